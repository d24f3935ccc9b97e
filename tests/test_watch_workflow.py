"""ckpk watch end to end: a lab drops a small simulated trial into an empty folder.

What is checked, each against an independent truth:
- one FCS file is written slowly in chunks (pauses shorter than --settle) while the rest
  is copied: the only run starts after its last byte was written, and the ledger's
  SHA-256 of it is that of the whole file (a partial read would differ, or be refused
  as truncated);
- a file added later re-gates its subject only: the other subject's gating batch keeps
  its mtime and Snakemake's log of that run gates no other subject;
- SIGINT in the middle of a run stops the watcher with exit status 0, and watch.log
  has one line per run, in order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpk.simulate import SimulationSettings, simulate_trial
from ckpk.tables import read_tsv

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("watch")]

# Pauses between chunks of the slow file are a tenth of this: a loaded machine would have
# to stall the writer for seconds before it looked finished.
SETTLE = 3.0
CHUNKS = 20  # written over 2 x SETTLE, so the other files settle long before it ends


def log_lines(results: Path) -> list[list[str]]:
    path = results / "watch.log"
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text().splitlines()]


def fields(line: list[str]) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line[2:])


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 240.0):
    """Poll until ``condition()`` is truthy; fail early if the watcher died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"the watcher exited ({proc.returncode}) waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs(results: Path) -> list[list[str]]:
    return [line for line in log_lines(results) if line[1] == "run"]


def snakemake_logs(results: Path) -> set[Path]:
    return set((results / ".snakemake" / "log").glob("*.log"))


def copy_in(source: Path, inbox: Path, rel: str) -> None:
    (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / rel, inbox / rel)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_watch_processes_a_drop_folder(tmp_path: Path) -> None:
    source, inbox, results = tmp_path / "source", tmp_path / "inbox", tmp_path / "results"
    simulate_trial(
        source, SimulationSettings(n_subjects=2, seed=7, events_per_file=2000, workers=1)
    )
    # Files without a planted problem: the slow one (S01), one dropped after the first
    # run and one dropped to start the run that SIGINT stops (both S02).
    problems = set(read_tsv(source / "truth" / "problems.tsv")["file"])
    shutil.rmtree(source / "truth")
    good = sorted(p.relative_to(source).as_posix() for p in (source / "flow").rglob("*.fcs"))
    good = [rel for rel in good if rel not in problems]
    slow_file = next(rel for rel in good if rel.startswith("flow/S01/"))
    later, last = [rel for rel in good if rel.startswith("flow/S02/")][-2:]
    inbox.mkdir()
    config = tmp_path / "lab.yaml"
    config.write_text("flow:\n  qc_plots: false\n")
    out = (tmp_path / "watch.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ckpk.cli", "watch", str(inbox), "--results", str(results)]
        + ["--config", str(config), "--settle", str(SETTLE), "--cores", "2"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        # An empty folder: the watcher says it waits for files, and keeps watching.
        wait_for(lambda: any(x[1] == "waiting" for x in log_lines(results)), "waiting", proc)

        # The drop: the slow file starts first and is still being written long after the
        # others stopped changing.
        slow_bytes = (source / slow_file).read_bytes()
        step = len(slow_bytes) // CHUNKS + 1
        chunks = [slow_bytes[i : i + step] for i in range(0, len(slow_bytes), step)]
        (inbox / slow_file).parent.mkdir(parents=True)
        with (inbox / slow_file).open("wb") as slow:
            slow.write(chunks[0])
            slow.flush()
            held_back = {slow_file, later, last}
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source).as_posix()
                if path.is_file() and rel not in held_back:
                    copy_in(source, inbox, rel)
            for chunk in chunks[1:]:
                time.sleep(SETTLE / 10)
                slow.write(chunk)
                slow.flush()
        slow_done = time.time()

        first = wait_for(lambda: runs(results), "the first run", proc)
        assert len(first) == 1
        run = fields(first[0])
        assert run["exit"] == "0", (tmp_path / "watch.out").read_text()[-3000:]
        assert run["report"] == "written" and (results / "report.html").stat().st_size > 0
        # The run started only after the slow file's last write (ordering, not a duration).
        assert dt.datetime.fromisoformat(first[0][0]).timestamp() > slow_done
        ledger = read_tsv(results / "ledger.tsv").set_index("file")
        assert ledger.loc[slow_file, "status"] == "ok"
        assert ledger.loc[slow_file, "sha256"] == sha256(source / slow_file)
        car_t = read_tsv(results / "flow" / "car_t.tsv")
        assert slow_file in set(car_t["file"]) and later not in set(car_t["file"])
        assert int(run["used"]) == int((ledger["status"] == "ok").sum())
        assert int(run["rejected"]) == int((ledger["status"] == "rejected").sum())

        # A file for S02 only: S02 is re-gated, S01 is not.
        batches = results / "flow" / "batches"
        before = {p.name: p.stat().st_mtime_ns for p in batches.iterdir()}
        logs_before = snakemake_logs(results)
        copy_in(source, inbox, later)
        second = wait_for(lambda: runs(results)[1:], "the second run", proc)
        run = fields(second[0])
        assert run["exit"] == "0" and run["trigger"] == later
        after = {p.name: p.stat().st_mtime_ns for p in batches.iterdir()}
        changed = {name for name in after if after[name] != before.get(name)}
        assert changed == {"S02.gate_counts.tsv", "S02.ledger.tsv"}
        # Snakemake's logs of this run and of its report, named by their start time.
        run_log, _report_log = sorted(snakemake_logs(results) - logs_before)
        text = run_log.read_text()
        assert "rule flow_gate_subject" in text
        assert "subject=S02" in text and "subject=S01" not in text
        assert later in set(read_tsv(results / "flow" / "car_t.tsv")["file"])

        # A third drop, and Ctrl-C while its run is under way.
        logs_before = snakemake_logs(results)
        copy_in(source, inbox, last)

        def gating_started() -> bool:
            new = snakemake_logs(results) - logs_before
            return any("rule flow_gate_subject" in log.read_text() for log in new)

        wait_for(gating_started, "the third run to gate S02", proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()

    lines = log_lines(results)
    assert [line[1] for line in lines] == ["start", "waiting", "run", "run", "run", "stop"]
    assert "subjects.tsv is missing" in fields(lines[1])["reason"]
    third = fields(lines[4])
    assert third["trigger"] == last and "stopped by a signal" in third["note"]
    # The watch lock is free again.
    from ckpk.watch import acquire_lock

    acquire_lock(results, inbox).close()


def test_a_lock_left_by_a_killed_run_is_cleared(tmp_path: Path) -> None:
    """Snakemake's lock in the results folder with no Snakemake working there (what a
    SIGKILL or a power cut leaves) is removed before the next run; the watcher's own lock
    guarantees no other watcher runs there."""
    from ckpk.watch import Watcher, WatchSettings

    trial, results = tmp_path / "trial", tmp_path / "results"
    simulate_trial(trial, SimulationSettings(n_subjects=1, seed=3, events_per_file=1000, workers=1))
    locks = results / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text(str(results / "ledger.tsv") + "\n")
    watcher = Watcher(WatchSettings(trial, results, cores="1"), echo=None)
    watcher._unlock_if_stale()
    assert not locks.exists() or not any(locks.iterdir())
    (line,) = log_lines(results)
    assert line[1] == "unlock" and fields(line)["exit"] == "0"
