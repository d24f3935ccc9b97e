"""The lab-side ``ckpk`` commands: ``simulate`` (a demo trial), ``summary`` (a run's
summary again) and ``watch`` (a drop folder). :mod:`ckpk.cli` builds the parser."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ckpk.cli_args import _positive_seconds, _whole_number, _wrap
from ckpk.errors import CkpkError


def _cmd_simulate(args: argparse.Namespace) -> None:
    from ckpk.simulate import SimulationSettings, simulate_trial

    settings = SimulationSettings(
        n_subjects=args.subjects, seed=args.seed, events_per_file=args.events
    )
    summary = simulate_trial(Path(args.out_dir), settings)
    print(summary, file=sys.stderr)


def _cmd_summary(args: argparse.Namespace) -> None:
    from ckpk.run_summary import summarise_run

    results = Path(args.results)
    if not results.is_dir():
        raise CkpkError(f"{results}: no such results folder")
    report = results / "report.html"
    print(summarise_run(results, report=report if report.is_file() else None))


def _cmd_watch(args: argparse.Namespace) -> None:
    from ckpk.watch import WatchSettings, watch

    watch(
        WatchSettings(
            input_dir=Path(args.input_dir),
            results_dir=Path(args.results),
            configfile=Path(args.config) if args.config else None,
            overrides=args.set,
            cores=args.cores,
            settle=args.settle,
            poll=args.poll,
            poll_interval=args.poll_interval,
            snakefile=Path(args.snakefile) if args.snakefile else None,
        )
    )


def _add_watch(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        help="watch a drop folder: run the workflow and rebuild the report when files arrive",
        description=_wrap(
            "Watch INPUT_DIR and, once new or changed files have stopped changing for "
            "--settle seconds, run the workflow on it (only what the change touches is "
            "recomputed) and rebuild RESULTS/report.html. Changes during a run make one "
            "follow-up run. One line per run goes to RESULTS/watch.log. One watcher per "
            "results folder. Stop with Ctrl-C or SIGTERM: the current run stops safely. "
            "Snakemake runs in the results folder, so relative paths inside --config "
            "FILE are taken from there (README.md, 'Leaving ckpk watching a drop folder')."
        ),
    )
    watch.add_argument("input_dir", metavar="INPUT_DIR", help="the folder the lab drops files into")
    watch.add_argument(
        "--results", default="results", metavar="DIR", help="results folder (default: results)"
    )
    watch.add_argument(
        "--config", metavar="FILE", help="a config file for the runs (Snakemake --configfile)"
    )
    watch.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override as for snakemake --config, e.g. 'flow={qc_plots: false}' "
        "(repeatable)",
    )
    watch.add_argument(
        "--settle",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a file counts as complete once its size and mtime have not changed for this "
        "long; longer than the longest pause of a copy (default %(default)g)",
    )
    watch.add_argument(
        "--poll",
        action="store_true",
        help="poll the folder instead of listening to file events (chosen by itself on "
        "network shares such as NFS or SMB, where events from other machines never arrive)",
    )
    watch.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds between two looks at the folder when polling (default %(default)g)",
    )
    watch.add_argument(
        "--cores", default="all", metavar="N", help="cores for each run (default: all)"
    )
    watch.add_argument(
        "--snakefile",
        metavar="PATH",
        help="the ckpk Snakefile (default: the one of the ckpk folder this ckpk comes from)",
    )
    watch.set_defaults(func=_cmd_watch)


def _add_simulate(commands: Any) -> None:
    sim = commands.add_parser(
        "simulate",
        help="write a simulated CAR T trial (FCS files, qPCR plates, sheets, truth/)",
        description=_wrap(
            "Write a whole simulated trial in the input-folder layout (config/README.md) plus "
            "a truth/ folder with the true values, for demos and tests."
        ),
    )
    sim.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    sim.add_argument(
        "--subjects", type=_whole_number(1), default=18, help="number of subjects (default 18)"
    )
    sim.add_argument(
        "--seed", type=_whole_number(0), default=2019, help="random seed (default 2019)"
    )
    sim.add_argument(
        "--events",
        type=_whole_number(1000),
        default=100_000,
        help="events per FCS file, at least 1000 (default 100000)",
    )
    sim.set_defaults(func=_cmd_simulate)


def _add_summary(commands: Any) -> None:
    summary = commands.add_parser(
        "summary",
        help="print the lab's summary of a finished run (files used and rejected, PK)",
        description=_wrap(
            "Print again the summary every workflow run ends with: files found, used and "
            "rejected by kind, the first rejections with their reasons, the subjects with "
            "PK results and where the tables and the report are."
        ),
    )
    summary.add_argument("results", metavar="RESULTS_DIR", help="the run's results_dir")
    summary.set_defaults(func=_cmd_summary)
