"""Speed and calibration of the population fit, written into benchmarks/README.md.

Run with ``.venv/bin/python benchmarks/popfit.py [--quick]`` (``make bench`` runs it after
``run.py``). Nothing here is asserted by the tests. Measured:

1. ``ckpk popfit`` on the 18-subject demo trial's ``pk/concentrations.tsv``, in a fresh
   process (JAX's compilation included), every CAR T analyte; the demo tables come from
   ``--results`` (default ``results/``, what ``make run`` wrote) or, when absent, from a
   workflow run up to ``pk/concentrations.tsv`` on a freshly simulated demo;
2. calibration over repeated simulated sparse trials (:mod:`ckpk.simulate.population`,
   30 subjects, 3 dose levels, 6-8 readings each): how often the 95 % intervals of the
   population parameters hold the truth, how many values are reported, and the subjects'
   Cmax and AUC0-28 errors against ``ckpk fit`` on the same readings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from readme_block import write_block

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
WORK = HERE / "work"


def _demo_tables(results: Path) -> tuple[Path, Path]:
    concentrations = results / "pk" / "concentrations.tsv"
    subjects = results / "ingest" / "subjects.tsv"
    if concentrations.exists() and subjects.exists():
        return concentrations, subjects
    results = WORK / "popfit_results"
    trial = WORK / "popfit_demo"
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--config"]
    command += [f"input_dir={trial}", f"results_dir={results}", f"demo={{dir: {trial}}}"]
    command += ["flow={qc_plots: false}", str(results / "pk" / "concentrations.tsv")]
    subprocess.run(command, cwd=PROJECT, check=True, capture_output=True)
    return results / "pk" / "concentrations.tsv", results / "ingest" / "subjects.tsv"


def bench_demo(results: Path) -> dict:
    concentrations, subjects = _demo_tables(results)
    out = WORK / "popfit_demo_out"
    command = [sys.executable, "-m", "ckpk.cli", "popfit", str(concentrations)]
    # Every analyte, as before the workflow's default became the primary one.
    command += ["--subjects", str(subjects), "-o", str(out), "--analytes", "all"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    log = [line for line in proc.stderr.splitlines() if line.startswith("car_")]
    return {"seconds": seconds, "peak_rss_mb": rss, "log": log}


def _truth(parameter: str, truth, reference: float) -> float:
    if parameter == "cmax":
        return truth.cmax * (reference / truth.reference_dose) ** truth.dose_exponent
    if parameter.startswith("omega_"):
        return truth.omega[parameter[len("omega_") :]]
    return float(getattr(truth, parameter))


def _errors(fit, sim) -> dict[str, float]:
    from ckpk.pk.model import fit_table

    population = pd.DataFrame(fit.subjects).set_index("subject_id")
    individual = fit_table(sim.concentrations).set_index("subject_id")
    truth = sim.truth.set_index("subject_id")
    out = {}
    for name in ("cmax", "auc_0_28"):
        both = population[name].notna() & individual[name].notna()
        for label, table in (("pop", population), ("ind", individual)):
            err = np.abs(np.log(table.loc[both, name] / truth.loc[both, name]))
            out[f"{name}_{label}"] = float(err.mean())
        out[f"{name}_n_ind"] = int(individual[name].notna().sum())
        out[f"{name}_n_pop"] = int(population[name].notna().sum())
    return out


def bench_calibration(replicates: int, subjects: int) -> dict:
    from ckpk.pk.population import fit_population
    from ckpk.simulate.population import simulate_population

    rows, errors, seconds = [], [], []
    for seed in range(101, 101 + replicates):
        sim = simulate_population(subjects, seed=seed)
        start = time.perf_counter()
        fit = fit_population(sim.concentrations, sim.subjects).fits["car_per_ul"]
        seconds.append(time.perf_counter() - start)
        reference = float(fit.data.covariate.reference)
        for r in fit.population:
            t = _truth(str(r["parameter"]), sim.population, reference)
            hit = bool(r["ci95_low"] <= t <= r["ci95_high"]) if r["converged"] else None
            rows.append({"parameter": r["parameter"], "reported": r["converged"], "hit": hit})
        errors.append(_errors(fit, sim))
        print(f"replicate {seed}: {seconds[-1]:.0f} s", flush=True)
    return {"rows": pd.DataFrame(rows), "errors": pd.DataFrame(errors), "seconds": seconds}


def _lines(demo: dict, cal: dict, args: argparse.Namespace) -> list[str]:
    cpu = platform.processor() or platform.machine()
    rows, errors = cal["rows"], cal["errors"]
    reported = rows[rows["reported"]]
    lines = [
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores ({cpu}), Python "
        f"{platform.python_version()}; `benchmarks/popfit.py --replicates {args.replicates}`.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| `ckpk popfit` on the 18-subject demo, 3 CAR T analytes, fresh process | "
        f"{demo['seconds']:.0f} s, peak RSS {demo['peak_rss_mb']:.0f} MB |",
        *[f"| {line.split(':')[0]} | {line.split(':', 1)[1].strip()} |" for line in demo["log"]],
        f"| one sparse trial of {args.subjects} subjects (median of {args.replicates}) | "
        f"{np.median(cal['seconds']):.0f} s |",
        f"| 95 % intervals holding the truth, all population parameters | "
        f"{reported['hit'].mean() * 100:.0f} % of {len(reported)} reported "
        f"({len(rows) - len(reported)} of {len(rows)} left empty) |",
    ]
    for name, group in reported.groupby("parameter", sort=False):
        lines.append(
            f"| — `{name}` | {group['hit'].sum()} of {len(group)} "
            f"({rows[rows['parameter'] == name].shape[0] - len(group)} empty) |"
        )
    for name in ("cmax", "auc_0_28"):
        lines.append(
            f"| mean abs. ln error of subjects' `{name}`, population vs `ckpk fit` (subjects "
            f"both estimate) | {errors[f'{name}_pop'].mean():.3f} vs "
            f"{errors[f'{name}_ind'].mean():.3f}; estimated for "
            f"{errors[f'{name}_n_pop'].mean():.1f} vs {errors[f'{name}_n_ind'].mean():.1f} "
            f"of {args.subjects} subjects |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=PROJECT / "results")
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--subjects", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="3 replicates")
    args = parser.parse_args()
    if args.quick:
        args.replicates = 3
    WORK.mkdir(parents=True, exist_ok=True)
    demo = bench_demo(args.results)
    print(f"demo: {demo}", flush=True)
    cal = bench_calibration(args.replicates, args.subjects)
    lines = _lines(demo, cal, args)
    write_block("popfit", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
