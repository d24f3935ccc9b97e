"""The ``ckpk`` command (README.md, "Results").

Heavy modules are imported inside each command so that ``ckpk --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ckpk import __version__
from ckpk.cli_args import (
    _column_help,
    _distinct_output,
    _Parser,
    _positive_day,
    _positive_number,
    _wrap,
)
from ckpk.cli_lab import _add_simulate, _add_summary, _add_watch
from ckpk.errors import CkpkError


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


def _cmd_pd(args: argparse.Namespace) -> None:
    from ckpk.pd import B_CELL_COLUMNS, b_cell_table
    from ckpk.pk.concentrations import read_concentrations
    from ckpk.tables import write_tsv

    _distinct_output(args)
    subjects = None
    if args.subjects:
        from ckpk.inputs import read_subjects

        subjects = read_subjects(args.subjects)
    table = b_cell_table(read_concentrations(args.input), subjects, threshold=args.below)
    write_tsv(table, args.output, columns=B_CELL_COLUMNS, sort_by=["subject_id"])


def _add_pd(commands: Any) -> None:
    pd_parser = commands.add_parser(
        "pd",
        help="B-cell aplasia per subject (baseline, nadir, onset, reconstitution, duration)",
        description=_wrap(
            "B-cell aplasia per subject from the b_cells_per_ul rows of a concentrations "
            "table (the columns of pk/concentrations.tsv), as pd/b_cells.tsv: baseline, "
            "nadir, onset below the threshold (a BLQ sample counts as below), "
            "reconstitution, duration and whether it is censored (docs/rules.md)."
        ),
    )
    pd_parser.add_argument("input", metavar="INPUT.tsv", help="concentrations table")
    pd_parser.add_argument(
        "-o", "--output", required=True, metavar="OUT.tsv", help="table to write"
    )
    pd_parser.add_argument(
        "--below",
        type=_positive_number,
        default=1.0,
        metavar="CELLS_PER_UL",
        help="aplasia threshold, B cells/uL (default %(default)g)",
    )
    pd_parser.add_argument(
        "--subjects", metavar="subjects.tsv", help="subject sheet giving dose_level (optional)"
    )
    pd_parser.set_defaults(func=_cmd_pd)


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


def _cmd_popfit(args: argparse.Namespace) -> None:
    from ckpk.pk.population_io import run_popfit

    out = Path(args.output_dir)
    run_popfit(
        args.input,
        args.subjects,
        out / "population_fit.tsv",
        out / "population_subjects.tsv",
        out / "plots",
        end=args.end,
        seed=args.seed,
        analytes=args.analytes,
    )


def _analytes(text: str) -> str | list[str]:
    """``primary``, ``all`` or a comma-separated list of CAR T analytes."""
    if text in ("primary", "all"):
        return text
    from ckpk.pk.concentrations import CAR_T_ANALYTES as known

    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected primary, all or analytes among {', '.join(known)}; got {text!r}"
        )
    return names


def _add_popfit(commands: Any) -> None:
    from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END

    popfit = commands.add_parser(
        "popfit",
        help="population (hierarchical Bayesian) fit of the Stein 2019 model per CAR T analyte",
        description=_wrap(
            "One hierarchical fit per CAR T analyte across subjects (docs/rules.md, "
            "'Population kinetics'): log-normal between-subject variability, dose as a "
            "covariate on Cmax, BLQ readings censored; NUTS, 4 chains, a fixed seed. Writes "
            "OUT_DIR/population_fit.tsv, OUT_DIR/population_subjects.tsv and "
            "OUT_DIR/plots/ (columns in config/README.md)."
        ),
    )
    popfit.add_argument("input", metavar="CONCENTRATIONS.tsv", help="concentrations table")
    popfit.add_argument(
        "--subjects", metavar="SUBJECTS.tsv", help="subject sheet with dose_level and dose"
    )
    popfit.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR")
    popfit.add_argument(
        "--end",
        type=_positive_day,
        default=DEFAULT_PARTIAL_AUC_END,
        help="end day of the AUC, written as column auc_0_END (default %(default)g)",
    )
    popfit.add_argument(
        "--analytes",
        type=_analytes,
        default="primary",
        help="which CAR T analytes to fit: primary (the default: qPCR copies/µg, else "
        "CAR+ cells/µL, else %% CD3+, the first with 6 fitted subjects), all, or a "
        "comma-separated list",
    )
    popfit.add_argument(
        # ckpk.pk.population_mcmc.DEFAULT_SEED, written out so that --help stays instant.
        "--seed",
        type=int,
        default=2019,
        help="random seed (default %(default)s)",
    )
    popfit.set_defaults(func=_cmd_popfit)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ckpk",
        description="CAR T-cell cellular kinetics: NCA, kinetic-model fits and a simulated "
        "trial. The whole pipeline (FCS gating, qPCR, PK, report) runs with `snakemake`.",
    )
    parser.add_argument("--version", action="version", version=f"ckpk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # The registry is plain Python, so reading it keeps `ckpk --help` instant.
    for add in (
        _add_nca,
        _add_fit,
        _add_parameters,
        _add_pd,
        _add_popfit,
        _add_simulate,
        _add_summary,
        _add_watch,
    ):
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
