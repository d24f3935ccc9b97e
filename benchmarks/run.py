"""Speed and memory of ckpk's heavy steps, written into benchmarks/README.md.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/run.py [--quick]``). Every
figure is measured on the machine that runs it, as the median of repeated runs; nothing
here is asserted by the tests. Measured, in one run:

1. gating one FCS file of the simulated panel widened to 16 channels
   (benchmarks/fcs_files.py) at 100,000 and 1,000,000 events, each in its own process
   after one warm-up: ckpk (``gate_files``: read, check, gate), naive FlowKit
   (``flowkit.Sample`` + ``GatingStrategy.gate_sample``) and a plain numpy read of the
   DATA segment (the floor); the counts of ckpk and FlowKit are compared gate by gate;
2. the gate QC plot per file, and the peak memory of gating plus plotting;
3. the workflow on the demo trial (``make run``: generate, run, report), then a re-run
   with nothing to do, then a re-run after one FCS file is added (which jobs ran, and
   how long each took).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from readme_block import write_block

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
WORK = HERE / "work"
STRATEGY = PROJECT / "resources" / "gating" / "car_t.xml"

# Runs in a fresh process: imports, one warm-up run, then the timed runs. Prints JSON.
GATE_CODE = """
import json, sys, time
import numpy as np
engine, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
strategy_path = {strategy!r}

def numpy_read():
    with open(path, "rb") as handle:
        head = handle.read(58)
    start, stop = int(head[26:34]), int(head[34:42])
    text = open(path, "rb").read(start).decode("latin-1")
    tokens = text[59:].split("/")
    par = int(tokens[tokens.index("$PAR") + 1])
    raw = np.fromfile(path, dtype="<f4", count=(stop - start + 1) // 4, offset=start)
    return raw.reshape(-1, par).astype(np.float64), {{}}

if engine == "flowkit":
    import flowkit as fk
    strategy = fk.parse_gating_xml(strategy_path)
    def run():
        report = strategy.gate_sample(fk.Sample(path)).report
        return {{"/" + "/".join((*r.gate_path, r.gate_name)): int(r.count)
                for r in report.itertuples()}}
elif engine == "numpy":
    def run():
        return numpy_read()[1]
else:
    from ckpk.flow.gating import gate_files
    from ckpk.flow.stage import load_plan, qc_plotter
    plan = load_plan(strategy_path)
    plot = qc_plotter(plan, {qc!r}) if engine == "ckpk+qc" else None
    def run():
        counts, rejected = gate_files([path], plan, labels=["S01_D14.fcs"], on_file=plot)
        assert not rejected, rejected
        return dict(zip(counts["gate_path"], counts["count"].astype(int).tolist()))

counts = run()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
# The process's own peak (VmHWM): ru_maxrss would include the parent's at fork time.
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({{"times": times, "counts": counts, "peak_mb": peak}}))
"""


def _gate(engine: str, path: Path, repeats: int) -> dict:
    code = GATE_CODE.format(strategy=str(STRATEGY), qc=str(WORK / "qc"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # as in a workflow job on a shared node
    proc = subprocess.run(
        [sys.executable, "-c", code, engine, str(path), str(repeats)],
        capture_output=True, text=True, check=True, cwd=PROJECT, env=env,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["median"] = statistics.median(result["times"])
    return result


def bench_gating(events: int, repeats: int) -> dict:
    """ckpk vs naive FlowKit vs numpy on one 16-channel file of ``events`` events."""
    sys.path.insert(0, str(HERE))
    from fcs_files import panel_events, write_fcs

    path = WORK / f"panel16_{events}.fcs"
    if not path.exists():
        write_fcs(path, *panel_events(events))
    found = {engine: _gate(engine, path, repeats) for engine in ("numpy", "flowkit", "ckpk")}
    found["ckpk+qc"] = _gate("ckpk+qc", path, repeats)
    flowkit, ckpk = found["flowkit"]["counts"], found["ckpk"]["counts"]
    found["identical"] = flowkit == ckpk
    found["gates"] = len(ckpk)
    print(f"gating {events:,} events: " + ", ".join(
        f"{k} {v['median']:.3f} s" for k, v in found.items() if isinstance(v, dict)
    ) + f"; identical counts: {found['identical']}", flush=True)  # fmt: skip
    return found


def bench_import() -> float:
    def seconds(code: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return seconds("import flowkit") - seconds("import numpy, pandas")


def _snakemake(demo: Path, results: Path, *extra: str) -> tuple[float, str]:
    command = [
        sys.executable, "-m", "snakemake", "--cores", "2",
        "--config", f"input_dir={demo}", f"results_dir={results}", f"demo={{dir: {demo}}}",
        *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return time.perf_counter() - start, proc.stdout + proc.stderr


def _jobs(log: str) -> dict[str, float]:
    """Job-seconds per rule from Snakemake's log (each job's start and end lines)."""
    stamp = r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]"
    started: dict[str, dt.datetime] = {}
    spent: dict[str, float] = {}
    current, rule = None, None
    for line in log.splitlines():
        if m := re.match(stamp, line):
            current = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line):
            rule = m.group(1)
        elif (m := re.match(r"^\s+jobid: (\d+)", line)) and rule is not None:
            started[m.group(1)], rule = current, None
        elif m := re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", line):
            begin = started.get(m.group(1), current)
            spent[m.group(2)] = spent.get(m.group(2), 0.0) + (current - begin).total_seconds()
    spent.pop("all", None)
    return spent


def bench_workflow(subjects: int, events: int, rounds: int) -> dict:
    """``make run`` on a fresh demo trial, a re-run with nothing to do, one added file."""
    demo, results = WORK / "demo" / "trial", WORK / "demo_results"
    shutil.rmtree(demo.parent, ignore_errors=True)
    shutil.rmtree(results, ignore_errors=True)
    size = f"demo={{dir: {demo}, subjects: {subjects}, events: {events}}}"
    run, log = _snakemake(demo, results, size)
    report, _ = _snakemake(demo, results, size, "--report", str(results / "report.html"))
    found = {"run": run, "report": report, "first_jobs": _jobs(log)}
    noop, first = [], None
    for _ in range(max(rounds, 3)):
        seconds, log = _snakemake(demo, results, size)
        noop.append(seconds)
        first = first if first is not None else "Nothing to be done" in log
    found.update(noop=statistics.median(noop), first_rerun_nothing=first)
    subject = sorted((demo / "flow").iterdir())[0]
    source = sorted(subject.glob("*.fcs"))[-1]
    added, jobs = [], {}
    for _ in range(rounds):
        extra = subject / f"{subject.name}_D730.fcs"
        shutil.copy(source, extra)
        seconds, log = _snakemake(demo, results, size)
        added.append(seconds)
        jobs = _jobs(log)
        extra.unlink()
        _snakemake(demo, results, size)  # back to the trial as generated
    found.update(added=statistics.median(added), added_jobs=jobs)
    print(f"workflow: {found}", flush=True)
    return found


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), load average {load} (1/5/15 min)"


QC_CODE = """
import json, sys, time
from pathlib import Path
from ckpk.flow.gating import gate_events
from ckpk.flow.fcs import read_fcs_file
from ckpk.flow.qc_plot import QcBatch
from ckpk.flow.stage import load_plan
plan = load_plan({strategy!r})
batch = QcBatch(plan)
spent = 0.0
paths = sorted(Path(sys.argv[1]).glob("*.fcs"))[: int(sys.argv[2])]
for path in paths:
    data = read_fcs_file(path)
    outcome = gate_events(data, plan)
    start = time.perf_counter()
    batch.add(outcome, {qc!r} + "/" + path.stem + ".png")
    spent += time.perf_counter() - start
start = time.perf_counter()
batch.finish()
spent += time.perf_counter() - start
print(json.dumps({{"median": spent / len(paths), "files": len(paths)}}))
"""


def bench_qc_plots(folder: Path, files: int) -> dict:
    """The QC plots of a subject's demo files, as a gating batch draws them (the files are
    gated first; only the plotting is timed): the mean per file."""
    code = QC_CODE.format(strategy=str(STRATEGY), qc=str(WORK / "qc"))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(files)],
        capture_output=True, text=True, check=True, cwd=PROJECT,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gating_rows(events: int, found: dict) -> list[str]:
    ckpk, flowkit, raw = (found[k]["median"] for k in ("ckpk", "flowkit", "numpy"))
    same = "identical on all" if found["identical"] else "**different** on some of"
    return [
        f"| gate 1 file, {events:,} events x 16 channels | **{ckpk:.3f} s** | {flowkit:.2f} s "
        f"| {raw:.3f} s | **{flowkit / ckpk:.1f}x** faster than FlowKit, {ckpk / raw:.1f}x "
        f"the numpy read; counts {same} {found['gates']} gates |",
        f"| gate it and draw its QC plot alone (a batch of one file) | "
        f"{found['ckpk+qc']['median']:.2f} s | | | |",
    ]


def _workflow_rows(flow: dict, qc: dict, subjects: int, events: int) -> list[str]:
    added = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(flow["added_jobs"].items()))
    first = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(flow["first_jobs"].items()))
    nothing = "yes" if flow["first_rerun_nothing"] else "**no**"
    return [
        f"| gate QC plot, per demo file ({events:,} events x 10 channels, one subject's "
        f"{qc['files']} files drawn as a batch) | {qc['median']:.2f} s | | | |",
        f"| `make run` on the demo trial ({subjects} subjects; generate, run, report) | "
        f"{flow['run'] + flow['report']:.0f} s (report {flow['report']:.0f} s) | | | "
        f"job-seconds: {first} |",
        f"| first re-run after it has nothing to do | {nothing} | | | |",
        f"| re-run with nothing to do (median of 3) | {flow['noop']:.1f} s | | | |",
        f"| re-run after adding one FCS file | {flow['added']:.0f} s | | | jobs: {added} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=18, help="demo trial size")
    parser.add_argument("--events", type=int, default=50_000, help="events per demo file")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per engine")
    parser.add_argument("--quick", action="store_true", help="3 subjects, 100k events only")
    parser.add_argument("--no-workflow", action="store_true", help="skip the snakemake runs")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    machine_before = _machine()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    if args.quick:
        args.subjects = 3
    gating = {events: bench_gating(events, args.repeats) for events in sizes}
    flowkit_import = bench_import()
    flow = qc = None
    if not args.no_workflow:
        flow = bench_workflow(args.subjects, args.events, rounds=1 if args.quick else 2)
        qc = bench_qc_plots(next((WORK / "demo" / "trial" / "flow").iterdir()), 12)
    largest = gating[sizes[-1]]
    lines = [
        f"Measured {dt.date.today().isoformat()} with `benchmarks/run.py"
        f"{' --quick' if args.quick else ''}`, Python {platform.python_version()}, on "
        f"{machine_before} at the start; at the end {_machine().split(', ', 1)[1]}. "
        "The machine is shared, so each figure is a median of repeated runs.",
        "",
        "| what | ckpk | naive FlowKit | numpy read | ratio |",
        "|---|---|---|---|---|",
        *(row for events in sizes for row in _gating_rows(events, gating[events])),
        f"| peak memory, gating + QC plot of the {sizes[-1]:,}-event file | "
        f"{largest['ckpk+qc']['peak_mb']:.0f} MB | {largest['flowkit']['peak_mb']:.0f} MB | "
        f"{largest['numpy']['peak_mb']:.0f} MB | |",
        f"| `import flowkit` (ckpk's gating jobs skip it) | | {flowkit_import:.2f} s | | |",
    ]
    if flow:
        lines += _workflow_rows(flow, qc, args.subjects, args.events)
    write_block("results", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
