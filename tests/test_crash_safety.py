"""Runs that survive being killed, and a second run refused while one is under way.

The truth for both is an undisturbed run of the same trial with the same config: every
table (``*.tsv`` under the results folder) must end byte-identical to it.

- SIGKILL to Snakemake and all its jobs in the middle of the gating stage, then a new
  run (``--rerun-incomplete`` comes from the default profile): identical tables. Right
  after the kill, every table on disk is either already identical to the undisturbed
  run's or recorded by Snakemake as incomplete, so none can be taken as done.
- A second run on the same results (same working folder, as ``make run`` twice) while
  the first runs is refused with Snakemake's lock message, and the first ends with
  identical tables.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpk.simulate import SimulationSettings, simulate_trial

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("crash")]


def command(trial: Path, results: Path, *extra: str) -> list[str]:
    # QC plots on: about a second per FCS file makes the gating stage long enough to be
    # caught in the middle.
    return [sys.executable, "-m", "snakemake", "-s", str(PROJECT / "Snakefile")] + [
        "--cores",
        "2",
        *extra,
        "--config",
        f"input_dir={trial}",
        f"results_dir={results}",
    ]


def start(trial: Path, results: Path, workdir: Path, log: Path) -> subprocess.Popen:
    workdir.mkdir(exist_ok=True)
    # Own session, so that one SIGKILL reaches Snakemake and every job it started.
    return subprocess.Popen(
        command(trial, results),
        cwd=workdir,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def run(trial: Path, results: Path, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        command(trial, results, *extra), cwd=workdir, capture_output=True, text=True, timeout=900
    )


def tables(results: Path) -> dict[str, str]:
    """SHA-256 of every table, by path inside the results folder (not logs/: the jobs'
    own time and memory measurements differ from run to run by nature)."""
    return {
        p.relative_to(results).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.rglob("*.tsv"))
        if "logs" not in p.relative_to(results).parts
    }


def marked_incomplete(workdir: Path) -> set[str]:
    """Outputs Snakemake recorded as started and not finished (.snakemake/incomplete)."""
    folder = workdir / ".snakemake" / "incomplete"
    if not folder.is_dir():
        return set()
    return {base64.urlsafe_b64decode(p.name).decode() for p in folder.iterdir() if p.is_file()}


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before {what}"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def gating_under_way(results: Path) -> bool:
    # At least one file of a subject gated (its QC plot drawn), the stage not finished.
    plots = list((results / "flow" / "qc").glob("*/*.png"))
    return bool(plots) and not (results / "flow" / "car_t.tsv").exists()


@pytest.fixture(scope="module")
def trial(tmp_path_factory) -> Path:
    trial = tmp_path_factory.mktemp("crash") / "trial"
    simulate_trial(
        trial, SimulationSettings(n_subjects=2, seed=11, events_per_file=2000, workers=1)
    )
    return trial


@pytest.fixture(scope="module")
def undisturbed(trial: Path, tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("undisturbed")
    proc = run(trial, base / "results", base / "work")
    assert proc.returncode == 0, proc.stderr[-4000:]
    found = tables(base / "results")
    assert "pk/nca.tsv" in found and "flow/car_t.tsv" in found
    return found


def test_sigkill_during_gating_then_rerun(trial: Path, undisturbed, tmp_path: Path) -> None:
    results, workdir = tmp_path / "results", tmp_path / "work"
    proc = start(trial, results, workdir, tmp_path / "killed.log")
    try:
        wait_for(lambda: gating_under_way(results), "gating to be under way", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (results / "flow" / "car_t.tsv").exists()

    # Nothing on disk can pass for done: a table is complete and right, or Snakemake
    # knows its job did not finish.
    incomplete = marked_incomplete(workdir)
    assert any("/flow/" in path for path in incomplete)
    for rel, digest in tables(results).items():
        assert digest == undisturbed.get(rel) or str(results / rel) in incomplete, rel

    # The kill left Snakemake's lock: a new run says so (and how to clear it).
    refused = run(trial, results, workdir)
    assert refused.returncode != 0
    assert "cannot be locked" in refused.stderr and "--unlock" in refused.stderr
    assert run(trial, results, workdir, "--unlock").returncode == 0

    rerun = run(trial, results, workdir)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert "flow_gate_subject" in rerun.stderr
    assert tables(results) == undisturbed


def test_second_run_on_the_same_results_is_refused(trial: Path, undisturbed, tmp_path) -> None:
    results, workdir = tmp_path / "results", tmp_path / "work"
    first = start(trial, results, workdir, tmp_path / "first.log")
    try:
        wait_for(lambda: gating_under_way(results), "the first run to be gating", first)
        second = run(trial, results, workdir)
        assert first.poll() is None, "the first run should still be running"
        assert first.wait(timeout=900) == 0, (tmp_path / "first.log").read_text()[-4000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stderr
    assert tables(results) == undisturbed
