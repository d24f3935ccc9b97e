"""Speed and memory of ckpk's heavy steps, written into benchmarks/README.md.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/run.py [--quick]``). Every
figure is measured on the machine that runs it; nothing here is asserted by the tests.

Measured:
1. ``ckpk simulate``: a trial of N subjects at E events per FCS file;
2. gating: the files of that trial through ``ckpk.flow.stage.gate_batch`` in one
   process (the workflow's per-subject batch), with and without gate QC plots, plus
   the cost of importing FlowKit, which a job-per-file design would pay per file;
3. the whole workflow on that trial with ``snakemake --cores 2``, then the work a
   re-run does after one FCS file is added (which jobs re-run, how long it takes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
WORK = HERE / "work"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0


def _python(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT
    )
    return time.perf_counter() - start, out.stdout.strip()


def bench_simulate(trial: Path, subjects: int, events: int) -> dict:
    from ckpk.simulate import SimulationSettings, simulate_trial

    shutil.rmtree(trial, ignore_errors=True)
    start = time.perf_counter()
    simulate_trial(trial, SimulationSettings(n_subjects=subjects, events_per_file=events))
    seconds = time.perf_counter() - start
    files = list((trial / "flow").rglob("*.fcs"))
    size = sum(f.stat().st_size for f in files) / 1e6
    return {"seconds": seconds, "fcs_files": len(files), "fcs_mb": size}


def bench_import() -> float:
    seconds, _ = _python("import flowkit")
    baseline, _ = _python("import numpy, pandas")
    return seconds - baseline


def bench_gating(trial: Path, plots: bool, limit: int | None) -> dict:
    code = f"""
import time, resource
from pathlib import Path
from ckpk.flow.stage import gate_batch
root = Path({str(trial)!r})
files = sorted(p.relative_to(root).as_posix() for p in (root / "flow").rglob("*.fcs"))
files = files[:{limit!r}] if {limit!r} else files
qc = Path({str(WORK / "qc")!r}) if {plots!r} else None
start = time.perf_counter()
counts, ledger = gate_batch([(root / f, f) for f in files],
                            {str(PROJECT / "resources/gating/car_t.xml")!r}, qc_dir=qc)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(len(files), seconds, rss)
"""
    _, out = _python(code)
    n, seconds, rss = out.split()
    return {"files": int(n), "seconds": float(seconds), "peak_rss_mb": float(rss)}


def _snakemake(trial: Path, results: Path, *extra: str) -> tuple[float, str]:
    command = [
        sys.executable, "-m", "snakemake", "--cores", "2",
        "--config", f"input_dir={trial}", f"results_dir={results}", *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return time.perf_counter() - start, proc.stdout + proc.stderr


def bench_workflow(trial: Path) -> dict:
    results = WORK / "results"
    shutil.rmtree(results, ignore_errors=True)
    full, _ = _snakemake(trial, results)
    # One new tube arrives for the first subject: only that subject's batch and the
    # tables downstream of it should run again.
    subject = sorted((trial / "flow").iterdir())[0]
    source = sorted(subject.glob("*.fcs"))[-1]
    extra = subject / f"{subject.name}_D730.fcs"
    shutil.copy(source, extra)
    try:
        # The jobs behind the ingest checkpoint are only known once it has run, so the
        # jobs are read from the log of the real re-run, not from a dry run.
        incremental, log = _snakemake(trial, results)
    finally:
        extra.unlink()
    executed = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", log, flags=re.M)
    jobs = sorted(set(executed) - {"all"})
    batches = executed.count("flow_gate_subject")
    return {"full": full, "incremental": incremental, "rerun_rules": jobs, "batches": batches}


def write_readme(lines: list[str]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = "\n".join([BEGIN, *lines, END])
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=18)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="3 subjects, 20k events")
    parser.add_argument("--no-workflow", action="store_true", help="skip the snakemake runs")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.events = 3, 20_000
    WORK.mkdir(parents=True, exist_ok=True)
    trial = WORK / "trial"

    sim = bench_simulate(trial, args.subjects, args.events)
    print(f"simulate: {sim}", flush=True)
    flowkit_import = bench_import()
    print(f"import flowkit: {flowkit_import:.2f} s", flush=True)
    plain = bench_gating(trial, plots=False, limit=None)
    print(f"gating: {plain}", flush=True)
    plotted = bench_gating(trial, plots=True, limit=30)
    print(f"gating + QC plots: {plotted}", flush=True)
    flow = None if args.no_workflow else bench_workflow(trial)
    print(f"workflow: {flow}", flush=True)

    per_file = plain["seconds"] / plain["files"]
    per_plot = (plotted["seconds"] / plotted["files"]) - per_file
    cpu = platform.processor() or platform.machine()
    lines = [
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}; `benchmarks/run.py --subjects {args.subjects} "
        f"--events {args.events}`.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| simulate {args.subjects} subjects, {sim['fcs_files']} FCS files of "
        f"{args.events:,} events ({sim['fcs_mb']:.0f} MB) | {sim['seconds']:.1f} s |",
        f"| `import flowkit` (paid once per gating job) | {flowkit_import:.2f} s |",
        f"| gate {plain['files']} files in one process, no plots | {plain['seconds']:.1f} s "
        f"({per_file:.2f} s/file), peak RSS {plain['peak_rss_mb']:.0f} MB |",
        f"| gate QC plot, per file | {per_plot:.2f} s |",
    ]
    if flow:
        lines += [
            f"| whole workflow (`snakemake --cores 2`, QC plots on) | {flow['full']:.0f} s |",
            f"| re-run after adding one FCS file | {flow['incremental']:.0f} s: "
            f"{flow['batches']} of {args.subjects} gating batches; jobs run: "
            f"{', '.join(flow['rerun_rules'])} |",
        ]
    lines += [
        "",
        f"Estimated for 300 files of {args.events:,} events on 2 cores, one job per "
        f"subject: {300 * per_file / 2 / 60:.1f} min gating, "
        f"{300 * (per_file + per_plot) / 2 / 60:.1f} min with QC plots.",
    ]
    write_readme(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
