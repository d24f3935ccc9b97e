"""The flow stage inside the workflow: the fast path gates, and incremental runs stay quiet.

One run of the workflow on a simulated demo trial it generates itself (2 subjects), then:

- every gating batch's log says the fast path gated every file, none through FlowKit's
  engine, from the plan compiled once (``flow/plan.json``);
- the first re-run after it has nothing to do: the demo folder made during the first run
  does not change what the ingest rules record (their inputs and params);
- a re-run finds the plan and checks the gate names without importing FlowKit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ckpk.flow.plan import read_plan

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("workflow")]


def _snakemake(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("flow_workflow")
    demo, results = root / "demo", root / "results"
    config = [
        "--config",
        f"input_dir={demo}",
        f"results_dir={results}",
        f"demo={{dir: {demo}, subjects: 2, events: 3000}}",
    ]
    proc = _snakemake(*config)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return demo, results, config


def test_every_batch_is_gated_by_the_fast_path(demo_run):
    _demo, results, _config = demo_run
    logs = sorted((results / "logs" / "flow").glob("gate_*.log"))
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "gating engine: ckpk fast path (9 gates compiled from car_t.xml)" in text
        assert "FlowKit's engine for 0" in text, text
    plan = read_plan(results / "flow" / "plan.json")
    assert plan.fallback is None and len(plan.gates) == 9
    assert "9 gates compiled for ckpk's fast path" in (results / "logs/flow/plan.log").read_text()
    assert len(list((results / "flow" / "qc").rglob("*.png"))) >= 20


def test_first_rerun_after_generating_the_demo_does_nothing(demo_run):
    _demo, _results, config = demo_run
    again = _snakemake(*config, "--dry-run")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-4000:]


def test_rerun_checks_gate_names_without_flowkit(demo_run):
    """The start-up check reads the plan an earlier run compiled: no FlowKit import."""
    _demo, _results, config = demo_run
    probe = (
        "import sys, runpy; sys.argv = ['snakemake', '--cores', '1', '--dry-run', "
        f"*{config!r}]\n"
        "try:\n    runpy.run_module('snakemake', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('FLOWKIT_IMPORTED', 'flowkit' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, timeout=600
    )
    assert "FLOWKIT_IMPORTED False" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
