"""The ``ckpk`` command (README.md, "Results").

Heavy modules are imported inside each command so that ``ckpk --help`` is instant.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ckpk import __version__
from ckpk.errors import CkpkError


def _wrap(text: str) -> str:
    # Raw formatting keeps the column table aligned, so prose is wrapped here.
    return textwrap.fill(text, width=88)


def _column_help(title: str, docs: dict[str, str]) -> str:
    width = max(len(name) for name in docs)
    lines = [title] + [f"  {name.ljust(width)}  {text}" for name, text in docs.items()]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse adds the usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _positive_day(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of days, not {text!r}")
    return value


def _distinct_output(args: argparse.Namespace) -> None:
    """Refuse to write the result over the table it is computed from."""
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise CkpkError(f"-o {args.output} is the input table; write the result elsewhere")


def _parse_lloq(items: Sequence[str]) -> dict[str, float]:
    result: dict[str, float] = {}
    for item in items:
        analyte, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            result[analyte.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--lloq {item!r}: expected ANALYTE=VALUE, e.g. car_copies_per_ug=25"
            ) from None
    return result


def _cmd_nca(args: argparse.Namespace) -> None:
    from ckpk.pk.concentrations import read_concentrations
    from ckpk.pk.nca import nca_table
    from ckpk.pk.parameters import nca_columns
    from ckpk.tables import write_tsv

    _distinct_output(args)
    concentrations = read_concentrations(args.input)
    subjects = None
    if args.subjects:
        from ckpk.inputs import read_subjects

        subjects = read_subjects(args.subjects)
    result = nca_table(concentrations, method=args.method, end=args.end, subjects=subjects)
    write_tsv(result, args.output, columns=nca_columns(args.end), sort_by=["subject_id", "analyte"])


def _cmd_fit(args: argparse.Namespace) -> None:
    from ckpk.pk.concentrations import read_concentrations
    from ckpk.pk.model import fit_table
    from ckpk.pk.parameters import model_fit_columns
    from ckpk.tables import write_tsv

    _distinct_output(args)
    concentrations = read_concentrations(args.input)
    result = fit_table(concentrations, lloq=_parse_lloq(args.lloq), end=args.end)
    columns = model_fit_columns(args.end)
    write_tsv(result, args.output, columns=columns, sort_by=["subject_id", "analyte"])


def _cmd_parameters(args: argparse.Namespace) -> None:
    from ckpk.pk.parameter_tables import parameter_table
    from ckpk.pk.parameters import TABLES

    tables = [args.table] if args.table else list(TABLES)
    blocks = []
    for table in tables:
        name = TABLES[table][0]
        heading = f"### `{name}`\n\n" if args.markdown else f"{name} (U = the analyte's unit)\n"
        if args.markdown and len(tables) == 1:
            heading = ""  # as pasted into config/README.md under its own heading
        blocks.append(heading + parameter_table(table, args.end, args.markdown))
    print("\n\n".join(blocks))


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


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


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


def _add_nca(commands: Any) -> None:
    from ckpk.pk.parameter_tables import column_help
    from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, NCA_PARAMETERS

    nca = commands.add_parser(
        "nca",
        help="non-compartmental analysis (PKNCA 0.12.1 rules) of a concentrations table",
        description=_wrap(
            "Non-compartmental analysis per subject x analyte, following the rules "
            "and defaults of PKNCA 0.12.1 (config/README.md, pk/nca.tsv). INPUT has the columns of "
            "pk/concentrations.tsv: subject_id, analyte, day, value, blq (and optionally unit, "
            "lloq, source). BLQ rows count as 0; screening days (< 0) are left out."
        ),
        epilog=_column_help("output columns:", column_help(NCA_PARAMETERS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nca.add_argument("input", metavar="INPUT.tsv", help="concentrations table")
    nca.add_argument("-o", "--output", required=True, metavar="OUT.tsv", help="NCA table to write")
    nca.add_argument(
        "--method",
        choices=["lin-up/log-down", "linear", "lin-log"],
        default="lin-up/log-down",
        help="AUC rule: linear trapezoid, or log trapezoid where the level falls and neither "
        "end is 0 (default: %(default)s)",
    )
    nca.add_argument(
        "--end",
        type=_positive_day,
        default=DEFAULT_PARTIAL_AUC_END,
        help="end day of the partial AUC, written as column auc_0_END (PKNCA aucint.last "
        "over [0, END]; default %(default)g)",
    )
    nca.add_argument(
        "--subjects",
        metavar="subjects.tsv",
        help="subject sheet giving dose_level per subject (optional)",
    )
    nca.set_defaults(func=_cmd_nca)


def _add_fit(commands: Any) -> None:
    from ckpk.pk.parameter_tables import column_help
    from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, MODEL_PARAMETERS

    fit = commands.add_parser(
        "fit",
        help="fit the expansion/contraction/persistence model (Stein 2019) per subject",
        description=_wrap(
            "Fit the piecewise kinetic model of Stein et al. 2019 per subject x "
            "analyte on the log scale, BLQ observations censored at their LLOQ. INPUT has the "
            "columns of pk/concentrations.tsv."
        ),
        epilog=_column_help("output columns:", column_help(MODEL_PARAMETERS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("input", metavar="INPUT.tsv", help="concentrations table")
    fit.add_argument("-o", "--output", required=True, metavar="OUT.tsv", help="fit table to write")
    fit.add_argument(
        "--lloq",
        action="append",
        default=[],
        metavar="ANALYTE=VALUE",
        help="LLOQ for BLQ rows whose lloq cell is empty (repeatable)",
    )
    fit.add_argument(
        "--end",
        type=_positive_day,
        default=DEFAULT_PARTIAL_AUC_END,
        help="end day of the model AUC, written as column auc_0_END (default %(default)g)",
    )
    fit.set_defaults(func=_cmd_fit)


def _add_parameters(commands: Any) -> None:
    from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, TABLES

    parameters = commands.add_parser(
        "parameters",
        help="list the PK parameters of pk/nca.tsv and pk/model_fits.tsv with their CDISC codes",
        description=_wrap(
            "Every column of pk/nca.tsv and pk/model_fits.tsv: its CDISC SDTM PP test code "
            "(PPTESTCD), its PKNCA name, its unit, what it means and the rule's source."
        ),
    )
    parameters.add_argument("--table", choices=list(TABLES), help="one table only")
    parameters.add_argument(
        "--end",
        type=float,
        default=DEFAULT_PARTIAL_AUC_END,
        help="end day of the partial AUC, which names its column (default %(default)g)",
    )
    parameters.add_argument(
        "--markdown", action="store_true", help="Markdown tables, as in config/README.md"
    )
    parameters.set_defaults(func=_cmd_parameters)


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ckpk",
        description="CAR T-cell cellular kinetics: NCA, kinetic-model fits and a simulated "
        "trial. The whole pipeline (FCS gating, qPCR, PK, report) runs with `snakemake`.",
    )
    parser.add_argument("--version", action="version", version=f"ckpk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # The registry is plain Python, so reading it keeps `ckpk --help` instant.
    for add in (_add_nca, _add_fit, _add_parameters, _add_simulate, _add_summary, _add_watch):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CkpkError as exc:
        print(f"ckpk {args.command}: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"ckpk {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output, missing folder, full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ckpk {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
