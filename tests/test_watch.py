"""ckpk watch without Snakemake: when changes count as settled, what one run is handed,
queueing during a run, the lock and the command it runs.

The end-to-end test with real runs is tests/test_watch_workflow.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpk.errors import CkpkError
from ckpk.watch import (
    ChangeTracker,
    Watcher,
    WatchSettings,
    acquire_lock,
    describe_files,
    filesystem_type,
    snakemake_command,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_file_written_in_steps_settles_only_after_its_last_write(tmp_path: Path) -> None:
    clock = Clock()
    tracker = ChangeTracker(tmp_path, settle=2.0, clock=clock)
    (tmp_path / "done.fcs").write_bytes(b"x" * 10)
    slow = tmp_path / "slow.fcs"
    slow.write_bytes(b"a")
    tracker.note("done.fcs")
    tracker.note("slow.fcs")
    for step in range(1, 6):
        clock.now += 1.5  # a pause shorter than the settle time
        with slow.open("ab") as handle:
            handle.write(b"a" * step)
        os.utime(slow, ns=(step * 10**9, step * 10**9))
        tracker.refresh()
        # done.fcs alone has long been stable; the run waits for the slow one too.
        assert not tracker.settled()
    clock.now += 1.9
    tracker.refresh()
    assert not tracker.settled()
    clock.now += 0.2
    tracker.refresh()
    assert tracker.settled()
    assert tracker.take() == ["done.fcs", "slow.fcs"]
    assert tracker.pending() == 0


def test_an_event_without_change_starts_no_run(tmp_path: Path) -> None:
    clock = Clock()
    tracker = ChangeTracker(tmp_path, settle=1.0, clock=clock)
    (tmp_path / "a.fcs").write_bytes(b"1")
    tracker.rescan()
    tracker.refresh()
    clock.now += 1
    assert tracker.settled() and tracker.take() == ["a.fcs"]
    tracker.note("a.fcs")  # e.g. opened and closed without writing
    tracker.refresh()
    clock.now += 1
    assert tracker.settled() and tracker.take() == []
    tracker.rescan()  # nothing differs from what the run saw
    assert tracker.pending() == 0


def test_an_event_racing_the_loop_is_kept_for_the_next_run(tmp_path: Path) -> None:
    clock = Clock()
    tracker = ChangeTracker(tmp_path, settle=1.0, clock=clock)
    (tmp_path / "a.fcs").write_bytes(b"1")
    tracker.note("a.fcs")
    tracker.refresh()
    clock.now += 1
    assert tracker.settled()
    (tmp_path / "b.fcs").write_bytes(b"2")
    tracker.note("b.fcs")  # arrives between settled() and take()
    assert tracker.take() == ["a.fcs"]
    assert tracker.pending() == 1
    tracker.refresh()
    clock.now += 1
    assert tracker.settled() and tracker.take() == ["b.fcs"]


def test_a_folder_moved_in_and_a_file_removed(tmp_path: Path) -> None:
    clock = Clock()
    tracker = ChangeTracker(tmp_path, settle=1.0, clock=clock)
    (tmp_path / "old.fcs").write_bytes(b"1")
    tracker.rescan()
    tracker.refresh()
    clock.now += 1
    assert tracker.take() == ["old.fcs"]
    (tmp_path / "flow" / "S01").mkdir(parents=True)
    (tmp_path / "flow" / "S01" / "S01_D1.fcs").write_bytes(b"2")
    (tmp_path / "old.fcs").unlink()
    tracker.note("flow")  # one event for the folder, none for what is inside
    tracker.note("old.fcs")
    tracker.refresh()
    tracker.refresh()
    clock.now += 1
    assert tracker.settled()
    assert tracker.take() == ["flow/S01/S01_D1.fcs", "old.fcs"]
    assert "old.fcs" not in tracker.seen


def test_changes_during_a_run_make_one_follow_up_run(tmp_path: Path) -> None:
    """The real loop and file events: the first run's trigger is the first drop; files
    dropped one after another while it runs all go to one second run."""
    inbox, results = tmp_path / "inbox", tmp_path / "results"
    inbox.mkdir()
    triggers: list[list[str]] = []

    class Recorder(Watcher):
        def process(self, trigger: list[str]) -> None:
            triggers.append(trigger)
            if trigger == []:  # the start on an empty folder: drop the first file
                (inbox / "a.fcs").write_bytes(b"a")
            elif len(triggers) == 2:  # "running": two more files arrive, 0.4 s apart
                (inbox / "b.fcs").write_bytes(b"b")
                time.sleep(0.4)
                (inbox / "c.fcs").write_bytes(b"c")
                time.sleep(0.4)
            else:
                self._stop.set()

    watcher = Recorder(WatchSettings(inbox, results, settle=0.5), echo=None)
    watcher.serve()
    assert triggers == [[], ["a.fcs"], ["b.fcs", "c.fcs"]]
    kinds = [line.split("\t")[1] for line in (results / "watch.log").read_text().splitlines()]
    assert kinds == ["start", "stop"]


def test_polling_sees_the_same_changes(tmp_path: Path) -> None:
    inbox, results = tmp_path / "inbox", tmp_path / "results"
    inbox.mkdir()
    (inbox / "a.fcs").write_bytes(b"a")
    triggers: list[list[str]] = []

    class Recorder(Watcher):
        def process(self, trigger: list[str]) -> None:
            triggers.append(trigger)
            if len(triggers) == 1:
                (inbox / "sub").mkdir()
                (inbox / "sub" / "b.fcs").write_bytes(b"b")
            else:
                self._stop.set()

    settings = WatchSettings(inbox, results, settle=0.5, poll=True, poll_interval=0.2)
    Recorder(settings, echo=None).serve()
    assert triggers == [["a.fcs"], ["sub/b.fcs"]]
    assert "polling every 0.2 s (--poll)" in (results / "watch.log").read_text()


def test_one_watcher_per_results_folder(tmp_path: Path) -> None:
    held = acquire_lock(tmp_path / "results", tmp_path / "in")
    try:
        with pytest.raises(CkpkError, match="already being watched .pid \\d+, watching"):
            acquire_lock(tmp_path / "results", tmp_path / "other")
        # Another process is refused too, in one line, with a non-zero exit status.
        (tmp_path / "in").mkdir()
        proc = subprocess.run(
            [sys.executable, "-m", "ckpk.cli", "watch", str(tmp_path / "in")]
            + ["--results", str(tmp_path / "results")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "already being watched" in proc.stderr
    finally:
        held.close()
    acquire_lock(tmp_path / "results", tmp_path / "in").close()


def test_refuses_results_inside_the_watched_folder(tmp_path: Path) -> None:
    with pytest.raises(CkpkError, match="inside the watched folder"):
        WatchSettings(tmp_path, tmp_path / "results").resolved()
    with pytest.raises(CkpkError, match="no such folder"):
        WatchSettings(tmp_path / "absent", tmp_path / "results").resolved()


def test_the_workflow_command(tmp_path: Path) -> None:
    config = tmp_path / "lab.yaml"
    config.write_text("flow:\n  qc_plots: false\n")
    (tmp_path / "in").mkdir()
    settings = WatchSettings(
        tmp_path / "in",
        tmp_path / "out",
        configfile=config,
        overrides=["nca={auc_method: linear}"],
        cores="2",
    ).resolved()
    command = snakemake_command(settings, "--report", "r.html")
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    assert command[command.index("-s") + 1].endswith("Snakefile")
    assert command[command.index("--configfile") + 1] == str(config)
    assert command[command.index("--config") :] == [
        "--config",
        f"input_dir={tmp_path / 'in'}",
        f"results_dir={tmp_path / 'out'}",
        "nca={auc_method: linear}",
    ]
    assert "--report" in command


def test_small_helpers() -> None:
    assert describe_files([]) == "(start)"
    assert describe_files([f"f{i}" for i in range(7)]) == "f0, f1, f2, f3, f4 (+2 more)"
    if Path("/proc/self/mounts").exists():
        assert filesystem_type(Path("/")) is not None


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs Linux /proc")
def test_knows_whether_snakemake_works_in_a_folder(tmp_path: Path) -> None:
    from ckpk.watch import _snakemake_running_in

    assert _snakemake_running_in(tmp_path) is False
    # A process whose command line names snakemake, working in that folder.
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "snakemake"], cwd=tmp_path
    )
    try:
        assert _snakemake_running_in(tmp_path) is True
    finally:
        sleeper.kill()
        sleeper.wait()
    assert _snakemake_running_in(tmp_path) is False
