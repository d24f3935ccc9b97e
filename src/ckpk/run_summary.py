"""What a run did, in a few lines for the lab (printed at the end of every run).

A lab scientist should not have to open ``ledger.tsv`` to learn that five files were
refused: the summary counts the files found, used and refused by kind, shows the first
refusals with their reasons, names the subjects that got PK results (and those that did
not) and says where the tables and the report are. It reads only the tables the run
wrote, so ``ckpk summary RESULTS`` prints the same text again later.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ckpk.tables import read_tsv

FIRST_REJECTIONS = 5
#: Set by `make run`: the report that the Makefile writes right after the run.
REPORT_VARIABLE = "CKPK_REPORT"


def report_from_environment() -> str | None:
    """The report a caller (``make run``) announces it will write after this run."""
    return os.environ.get(REPORT_VARIABLE) or None


REASON_WIDTH = 160


def _ledger(results: Path) -> tuple[pd.DataFrame | None, str]:
    """The final ledger, or ingest's when a later stage did not finish."""
    final = results / "ledger.tsv"
    if final.is_file():
        return read_tsv(final), ""
    ingest = results / "ingest" / "ledger.tsv"
    if ingest.is_file():
        return read_tsv(ingest), " (ingest verdicts only: later stages did not finish)"
    return None, ""


def _short(text: str, width: int = REASON_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _file_lines(ledger: pd.DataFrame) -> list[str]:
    lines = []
    for kind in ("fcs", "qpcr", "sheet", "other"):
        rows = ledger[ledger["kind"] == kind]
        if rows.empty:
            continue
        counts = rows["status"].value_counts()
        parts = [
            f"{int(counts[status])} {word}"
            for status, word in (("ok", "used"), ("rejected", "rejected"), ("ignored", "ignored"))
            if status in counts
        ]
        lines.append(f"  {kind:<6}{len(rows):>5} found: {', '.join(parts)}")
    return lines


def _rejection_lines(ledger: pd.DataFrame) -> list[str]:
    rejected = ledger[ledger["status"] == "rejected"].sort_values("file")
    if rejected.empty:
        return ["  no file was rejected"]
    lines = [f"  first rejections ({len(rejected)} in all, every one in ledger.tsv):"]
    for row in rejected.head(FIRST_REJECTIONS).itertuples():
        # Reasons raised while reading a file often start with its path already.
        reason = str(row.reason).removeprefix(f"{row.file}: ")
        lines.append(f"    {row.file}: {_short(reason)}")
    return lines


def _pk_lines(results: Path) -> list[str]:
    nca_path = results / "pk" / "nca.tsv"
    if not nca_path.is_file():
        return ["  PK: no NCA table (the PK stage did not run to its end)"]
    nca = read_tsv(nca_path)
    subjects = sorted(set(nca["subject_id"].astype(str)))
    with_result = sorted(
        set(nca.loc[pd.to_numeric(nca["cmax"], errors="coerce") > 0, "subject_id"].astype(str))
    )
    if not subjects:
        return ["  PK: no subject has a CAR T measurement to analyse"]
    analytes = ", ".join(sorted(set(nca["analyte"].astype(str))))
    lines = [
        f"  PK: {len(with_result)} of {len(subjects)} subjects with quantifiable CAR T ({analytes})"
    ]
    without = [s for s in subjects if s not in with_result]
    if without:
        lines.append(f"    no quantifiable sample: {', '.join(without)}")
    sheet = results / "ingest" / "subjects.tsv"
    if sheet.is_file():
        enrolled = set(read_tsv(sheet)["subject_id"].astype(str))
        missing = sorted(enrolled - set(subjects))
        if missing:
            lines.append(f"    no measurement at all: {', '.join(missing)}")
    return lines


def summarise_run(
    results_dir: str | Path, report: str | Path | None = None, failed: bool = False
) -> str:
    """The end-of-run summary for ``results_dir``.

    ``report`` is the report the run writes (or wrote); ``failed`` says that a job
    failed, so the lab knows that the tables may be incomplete.
    """
    results = Path(results_dir)
    verdict = (
        "ckpk: the run FAILED (see the error above); what was written:"
        if failed
        else "ckpk: the run finished"
    )
    lines = [verdict]
    ledger, note = _ledger(results)
    if ledger is None:
        lines.append(f"  no ledger in {results}: the run stopped before any file was read")
    else:
        lines.append(f"  files under the input folder{note}:")
        lines += _file_lines(ledger)
        lines += _rejection_lines(ledger)
    lines += _pk_lines(results)
    lines.append(f"  tables: {results}/ (read ledger.tsv first; columns in config/README.md)")
    if report is not None:
        lines.append(f"  report: {report}")
    else:
        lines.append(
            f"  report: not written by this run; `snakemake --report {results}/report.html` "
            "with the same --config (or `make report`)"
        )
    return "\n".join(lines)
