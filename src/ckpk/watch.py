"""``ckpk watch``: a drop folder that runs the workflow by itself (README.md, "Leaving ckpk
watching a drop folder").

A lab copies instrument files into a shared folder, often while other files are still
being copied. The watcher:

- hears about changes from file events (watchdog: inotify on Linux) or, where events do
  not reach this machine (network shares, or ``--poll``), by polling;
- hands a change to a run only once every changed file has kept its size, mtime and inode
  for ``settle`` seconds, so a file still being copied is not read;
- runs the workflow incrementally (Snakemake recomputes what the change touches) and then
  rebuilds the report;
- queues changes that arrive during a run into one follow-up run;
- holds a lock on the results folder, so one watcher per results folder;
- writes one line per run to ``RESULTS/watch.log``;
- stops on SIGINT/SIGTERM, passing the signal on to Snakemake, which stops its jobs and
  leaves their outputs marked incomplete for the next run (never taken as done).

Snakemake runs with the results folder as its working folder, so its state (locks,
records of incomplete jobs, logs under ``.snakemake/``) belongs to that results folder.
"""

from __future__ import annotations

import collections
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ckpk.errors import CkpkError, InputError
from ckpk.watch_changes import (
    FOLDER_NOISE,
    NETWORK_FILESYSTEMS,
    READ_EVENTS,
    ChangeTracker,
    filesystem_type,
)
from ckpk.watch_log import WatchLog, describe_files, ledger_counts, now

__all__ = [
    "ChangeTracker",
    "Watcher",
    "WatchSettings",
    "describe_files",
    "filesystem_type",
    "watch",
]

DEFAULT_SETTLE_SECONDS = 30.0
DEFAULT_POLL_SECONDS = 5.0
# How often the loop looks at pending files; short enough that a settle of a few
# seconds is honoured closely, long enough to cost nothing.
TICK_SECONDS = 0.5
# A full comparison of the folder with what the last run saw, whatever the events said:
# inotify can overflow and drop events, and then a file would wait for the next change.
RESCAN_SECONDS = 600.0
# After Ctrl-C Snakemake stops its jobs and exits; if it has not within this time its
# whole process group is killed (its jobs' outputs stay marked incomplete).
STOP_GRACE_SECONDS = 60.0
LOCK_NAME = ".ckpk-watch.lock"
LOG_NAME = "watch.log"


@dataclass
class WatchSettings:
    """What ``ckpk watch`` was asked to do (README.md; ``ckpk watch --help``)."""

    input_dir: Path
    results_dir: Path
    configfile: Path | None = None
    overrides: list[str] = field(default_factory=list)
    cores: str = "all"
    settle: float = DEFAULT_SETTLE_SECONDS
    poll: bool = False
    poll_interval: float = DEFAULT_POLL_SECONDS
    snakefile: Path | None = None

    def resolved(self) -> WatchSettings:
        """Absolute paths, checked: Snakemake runs in the results folder."""
        input_dir = self.input_dir.expanduser().resolve()
        results_dir = self.results_dir.expanduser().resolve()
        if not input_dir.is_dir():
            raise CkpkError(f"{self.input_dir}: no such folder to watch")
        if results_dir.is_relative_to(input_dir):
            raise CkpkError(
                f"--results {self.results_dir} is inside the watched folder; ckpk never "
                "writes into the input folder"
            )
        configfile = None
        if self.configfile is not None:
            configfile = self.configfile.expanduser().resolve()
            if not configfile.is_file():
                raise CkpkError(f"--config {self.configfile}: no such file")
        snakefile = (self.snakefile or default_snakefile()).expanduser().resolve()
        if not snakefile.is_file():
            raise CkpkError(
                f"{snakefile}: the ckpk Snakefile is not there; give --snakefile "
                "/path/to/ckpk/Snakefile (an install from a wheel does not carry the workflow)"
            )
        return WatchSettings(
            input_dir=input_dir,
            results_dir=results_dir,
            configfile=configfile,
            overrides=list(self.overrides),
            cores=self.cores,
            settle=self.settle,
            poll=self.poll,
            poll_interval=self.poll_interval,
            snakefile=snakefile,
        )


def default_snakefile() -> Path:
    """The Snakefile of the ckpk folder this package is run from (src/ckpk/ → ../..)."""
    return Path(__file__).resolve().parents[2] / "Snakefile"


def snakemake_command(settings: WatchSettings, *extra: str) -> list[str]:
    """The workflow run (or, with ``extra``, e.g. the report) for these settings."""
    command = [sys.executable, "-m", "snakemake", "-s", str(settings.snakefile)]
    command += ["--cores", settings.cores, *extra]
    if settings.configfile is not None:
        command += ["--configfile", str(settings.configfile)]
    command += ["--config", f"input_dir={settings.input_dir}"]
    command += [f"results_dir={settings.results_dir}", *settings.overrides]
    return command


def acquire_lock(results: Path, input_dir: Path) -> IO[str]:
    """Hold the results folder's watch lock for as long as the returned file is open."""
    results.mkdir(parents=True, exist_ok=True)
    handle = open(results / LOCK_NAME, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CkpkError(
            f"{results} is already being watched ({holder}); one watcher per results "
            "folder: stop that one first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, watching {input_dir}\n")
    handle.flush()
    return handle


def _snakemake_running_in(folder: Path) -> bool | None:
    """Whether a live Snakemake process has ``folder`` as its working folder (Linux);
    None when this cannot be known."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != folder:
                continue
            if b"snakemake" in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@dataclass
class Outcome:
    returncode: int
    tail: list[str]

    @property
    def status(self) -> str:
        if self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return str(self.returncode)


class Watcher:
    """The service loop (``ckpk watch``)."""

    def __init__(self, settings: WatchSettings, echo: IO[str] | None = sys.stderr) -> None:
        self.settings = settings.resolved()
        self.input_dir = self.settings.input_dir
        self.results = self.settings.results_dir
        self.echo = echo
        self.tracker = ChangeTracker(self.input_dir, self.settings.settle)
        self.log = WatchLog(self.results / LOG_NAME, echo)
        self._stop = threading.Event()
        self._signals = 0

    # --- signals -------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only flags: the loop that waits for Snakemake passes the signal on.
        self._signals += 1
        self._stop.set()

    # --- running Snakemake ---------------------------------------------------------
    def _snakemake(self, command: list[str], env: dict[str, str] | None = None) -> Outcome:
        """Run one Snakemake command in the results folder, its output passed to ours.

        On a first stop signal Snakemake gets SIGINT: it stops its jobs, marks their
        outputs incomplete (the next run redoes them) and exits. A second signal, or
        STOP_GRACE_SECONDS without exit, kills its whole process group; Snakemake's records
        of incomplete jobs and whole-file table writes keep that safe too.
        """
        tail: collections.deque[str] = collections.deque(maxlen=200)
        # Its own session: a terminal's Ctrl-C reaches the watcher only, which passes it
        # on once; and the whole group (Snakemake and its jobs) can be killed if needed.
        child = subprocess.Popen(
            command,
            cwd=self.results,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

        def pump() -> None:
            assert child.stdout is not None
            for line in child.stdout:
                tail.append(line.rstrip("\n"))
                if self.echo is not None:
                    self.echo.write(line)
            if self.echo is not None:
                self.echo.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        forwarded: float | None = None
        while True:
            try:
                child.wait(timeout=TICK_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            if not self._stop.is_set():
                continue
            if forwarded is None:
                forwarded = time.monotonic()
                child.send_signal(signal.SIGINT)
            elif self._signals > 1 or time.monotonic() - forwarded > STOP_GRACE_SECONDS:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reader.join(timeout=10)
        return Outcome(child.returncode, list(tail))

    def _unlock_if_stale(self) -> None:
        """Remove Snakemake's lock left by a run that was killed (power cut, SIGKILL).

        Only this watcher runs Snakemake in the results folder (its lock), so a lock
        there with no live Snakemake process working in the folder is stale.
        """
        locks = self.results / ".snakemake" / "locks"
        if not locks.is_dir() or not any(locks.iterdir()):
            return
        if _snakemake_running_in(self.results) is not False:
            return
        outcome = self._snakemake(snakemake_command(self.settings, "--unlock"))
        self.log.write("unlock", reason="lock left by a killed run", exit=outcome.status)

    def process(self, trigger: list[str]) -> None:
        """One run for these changed entries (or a 'waiting' line)."""
        from ckpk.inputs import check_input_folder

        try:
            check_input_folder(self.input_dir)
        except (InputError, OSError) as exc:
            # The workflow would stop before any job: not a failure, files are coming.
            self.log.write("waiting", trigger=describe_files(trigger), reason=str(exc))
            return
        self._unlock_if_stale()
        started_at, started = now(), time.monotonic()
        report = self.results / "report.html"
        run = self._snakemake(snakemake_command(self.settings), env={"CKPK_REPORT": str(report)})
        report_status = "skipped (run failed)" if run.returncode else "skipped (stopping)"
        if run.returncode == 0 and not self._stop.is_set():
            made = self._snakemake(snakemake_command(self.settings, "--report", str(report)))
            report_status = "written" if made.returncode == 0 else f"failed (exit {made.status})"
        note = None
        if self._stop.is_set():
            note = "stopped by a signal: the next run redoes what this one left incomplete"
        elif run.returncode != 0:
            note = _failure_note(run.tail, self.results)
        self.log.write(
            "run",
            at=started_at,
            trigger=describe_files(trigger),
            **ledger_counts(self.results),
            exit=run.status,
            seconds=f"{time.monotonic() - started:.1f}",
            report=report_status,
            queued=self.tracker.pending() or None,
            note=note,
        )

    # --- the loop ------------------------------------------------------------------
    def _start_observer(self):  # -> watchdog BaseObserver, description
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        root, tracker = self.input_dir, self.tracker

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in READ_EVENTS:
                    return
                if event.is_directory and event.event_type in FOLDER_NOISE:
                    return
                for raw in (event.src_path, getattr(event, "dest_path", "")):
                    path = Path(os.fsdecode(raw)) if raw else None
                    if path is not None and path != root and path.is_relative_to(root):
                        tracker.note(path.relative_to(root).as_posix())

        handler = Handler()
        why = "--poll" if self.settings.poll else None
        if why is None:
            kind = filesystem_type(self.input_dir)
            if kind in NETWORK_FILESYSTEMS:
                why = f"{kind} share: changes made from other machines send no events here"
        if why is None:
            observer = Observer()
            try:
                observer.schedule(handler, str(root), recursive=True)
                observer.start()
                return observer, f"file events ({type(observer).__name__})"
            except OSError as exc:
                why = f"file events unavailable: {exc}"
        observer = PollingObserver(timeout=self.settings.poll_interval)
        observer.schedule(handler, str(root), recursive=True)
        observer.start()
        return observer, f"polling every {self.settings.poll_interval:g} s ({why})"

    def serve(self) -> None:
        """Watch until SIGINT or SIGTERM; every run is logged in RESULTS/watch.log."""
        lock = acquire_lock(self.results, self.input_dir)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        observer = None
        try:
            observer, how = self._start_observer()
            self.log.write(
                "start",
                input=self.input_dir,
                watch=how,
                settle=f"{self.settings.settle:g}s",
                pid=os.getpid(),
            )
            self.tracker.rescan()
            if not self.tracker.pending():
                self.process([])  # an empty folder: say that it waits for files
            last_scan = time.monotonic()
            while not self._stop.wait(TICK_SECONDS):
                if time.monotonic() - last_scan >= RESCAN_SECONDS:
                    self.tracker.rescan()
                    last_scan = time.monotonic()
                self.tracker.refresh()
                if not self.tracker.settled():
                    continue
                trigger = self.tracker.take()
                if not trigger:
                    continue
                try:
                    self.process(trigger)
                except Exception as exc:  # a service keeps watching; the next change retries
                    self.log.write("error", trigger=describe_files(trigger), reason=repr(exc))
            self.log.write("stop", reason=f"signal ({self._signals} received)")
        finally:
            if observer is not None:
                observer.stop()
                observer.join(timeout=10)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            lock.close()


def _failure_note(tail: list[str], results: Path) -> str:
    """The line that says why a run failed, for watch.log."""
    text = "\n".join(tail)
    if "cannot be locked" in text:
        return (
            f"{results} is locked by another Snakemake run working in that folder; it is "
            "retried at the next change"
        )
    for line in tail:
        if line.startswith("ckpk:") or line.startswith("Error"):
            return line
    return "see the Snakemake log under .snakemake/log/ in the results folder"


def watch(settings: WatchSettings) -> None:
    """``ckpk watch``: serve until stopped by a signal."""
    Watcher(settings).serve()
