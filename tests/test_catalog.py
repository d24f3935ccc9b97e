"""What a workflow catalog checks: `snakemake --lint` clean, snakefmt-formatted files, and
the small `.test/` configuration running end to end with its report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_snakemake_lint_is_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Congratulations, your workflow is in a good condition" in output


def test_snakefmt_check_is_clean() -> None:
    snakefmt = shutil.which("snakefmt", path=str(BIN)) or "snakefmt"
    proc = subprocess.run(
        [snakefmt, "--check", "Snakefile", "workflow/rules"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_every_rule_declares_threads_memory_time_and_a_benchmark() -> None:
    """A cluster asks each job for what its rule declares: none may fall back to the
    executor's defaults (the values come from results/logs/benchmarks/, see README)."""
    import re

    rules = {}
    for path in sorted((PROJECT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=(?:rule|checkpoint) )", path.read_text()):
            head = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if head and head.group(1) != "all":
                rules[head.group(1)] = block
    assert len(rules) >= 15, sorted(rules)
    for name, block in rules.items():
        for key in ("threads:", "resources:", "mem_mb=", "runtime=", "benchmark:", "conda:"):
            assert key in block, f"rule {name} declares no {key.rstrip(':=')}"


@pytest.mark.workflow
@pytest.mark.xdist_group("catalog")
def test_dot_test_config_runs_with_its_report(tmp_path: Path) -> None:
    """The catalog's CI command, from a copy of the workflow so that `.test/` here stays
    clean: `snakemake --configfile .test/config/config.yaml`, then `--report`."""
    copy = tmp_path / "ckpk"
    shutil.copytree(
        PROJECT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "results", "demo", ".snakemake", "*.pyc", "__pycache__", "build"
        ),
    )
    base = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile"]
    base.append(".test/config/config.yaml")
    proc = subprocess.run(base, cwd=copy, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = copy / ".test" / "results"
    assert (results / "pk" / "nca.tsv").is_file() and (results / "sdtm" / "pp.xpt").is_file()
    proc = subprocess.run(
        [*base, "--report", str(results / "report.html")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (results / "report.html").stat().st_size > 100_000
