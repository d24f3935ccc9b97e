"""The qPCR stage of the workflow: plate files → wells, curves, transgene, ledger verdicts.

Identity of plate samples follows config/README.md (samples.tsv row first, then the name
pattern); a sample whose subject is unknown keeps its row in ``transgene.tsv`` with a
flag and stays out of the PK tables. A plate is rejected in the ledger when it cannot
be read, holds no well of the CAR assay, or its CAR standard curve fails (docs/rules.md, Bad input).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from ckpk.cells import safe_file_name
from ckpk.errors import InputError
from ckpk.inputs import STAGE_LEDGER_COLUMNS, identify, sample_sheet_row

from .curves import standard_curves
from .formats._document import DEFAULT_MAX_UNZIPPED_MB
from .quantify import DEFAULT_DNA_NG, DEFAULT_MIN_POSITIVE_REPLICATES, quantify
from .reader import read_plate
from .wells import DEFAULT_CQ_RANGE


@dataclass
class QpcrResult:
    wells: pd.DataFrame
    curves: pd.DataFrame
    transgene: pd.DataFrame
    ledger: pd.DataFrame  # file, status, reason, stage
    plots: list[Path] = field(default_factory=list)


def _plate_ids(labels: Sequence[str]) -> list[str]:
    """One id per plate file, never shared: a plate is one file, two files never merge.

    The file stem (``PCR01``); where two files share a stem, their path below ``qpcr/``
    with the extension (``PCR01.txt``, ``PCR01.csv``; ``a_P1.txt``, ``b_P1.txt``); where
    even that is shared, a number is added.
    """
    stems = [PurePosixPath(label).stem for label in labels]
    ids = []
    for label, stem in zip(labels, stems, strict=True):
        if stems.count(stem) > 1:
            parts = PurePosixPath(label).parts
            stem = "_".join(parts[1:] if parts and parts[0].lower() == "qpcr" else parts)
        ids.append(stem)
    seen: Counter[str] = Counter()
    unique = []
    for plate_id in ids:
        seen[plate_id] += 1
        unique.append(plate_id if ids.count(plate_id) == 1 else f"{plate_id}~{seen[plate_id]}")
    return unique


def sample_identities(
    names: Sequence[str],
    samples_sheet: pd.DataFrame | None,
    subjects: pd.DataFrame,
    name_pattern: str,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Subject, day and DNA mass of each plate sample name; reasons for the others."""
    known = set(subjects["subject_id"].astype(str)) if len(subjects) else set()
    rows, problems = [], {}
    for name in sorted(set(names)):
        sheet_row = sample_sheet_row(samples_sheet, name)
        identity = identify(name, name_pattern, sheet_row)
        dna_ng = math.nan
        if sheet_row is not None and pd.notna(sheet_row.get("dna_ng")):
            dna_ng = float(sheet_row["dna_ng"])
        subject_id, day = "", math.nan
        if identity is None:
            problems[name] = (
                f"sample {name!r}: name gives no subject/day and samples.tsv has no row"
            )
        elif identity.subject_id not in known:
            problems[name] = f"sample {name!r}: subject {identity.subject_id} not in subjects.tsv"
        else:
            subject_id, day = identity.subject_id, identity.day
        rows.append({"sample": name, "subject_id": subject_id, "day": day, "dna_ng": dna_ng})
    return pd.DataFrame(rows, columns=["sample", "subject_id", "day", "dna_ng"]), problems


def run_qpcr(
    plates: Sequence[tuple[str | Path, str]],
    subjects: pd.DataFrame,
    samples_sheet: pd.DataFrame | None,
    name_pattern: str,
    car_target: str,
    reference_target: str | None = None,
    default_dna_ng: float = DEFAULT_DNA_NG,
    acceptance: Mapping[str, float] | None = None,
    plot_dir: str | Path | None = None,
    max_unzipped_mb: float = DEFAULT_MAX_UNZIPPED_MB,
    cq_range: tuple[float, float] = DEFAULT_CQ_RANGE,
    min_positive_replicates: int = DEFAULT_MIN_POSITIVE_REPLICATES,
) -> QpcrResult:
    """Read every plate (``(path, label)`` pairs; labels name files in the ledger).

    Wells left out as implausible (``flag`` in the wells table) are named in the plate's
    ledger note; the limits are ``cq_range`` and ``max_unzipped_mb`` (config ``qpcr``).
    """
    reference_target = reference_target or None
    wells, verdicts = _read_plates(plates, car_target, max_unzipped_mb, cq_range)
    curves = standard_curves(wells, acceptance)
    names = wells.loc[wells["task"] == "unknown", "sample"].astype(str)
    identities, problems = sample_identities(list(names), samples_sheet, subjects, name_pattern)
    transgene = quantify(
        wells,
        curves,
        identities,
        car_target,
        reference_target,
        default_dna_ng=default_dna_ng,
        min_positive_replicates=min_positive_replicates,
    )
    for i, sample in enumerate(transgene["sample"]):
        if sample in problems:
            flag = transgene.at[i, "flag"]
            transgene.at[i, "flag"] = f"{flag}; {problems[sample]}" if flag else problems[sample]
    label_of = dict(zip(wells["plate"], wells["source_file"], strict=False))
    _curve_verdicts(curves, verdicts, label_of, (car_target, reference_target))
    _unknown_sample_notes(transgene, problems, verdicts, label_of)
    plots = _draw_curves(wells, curves, plot_dir) if plot_dir is not None else []
    ledger = pd.DataFrame(
        [
            {"file": label, "status": status, "reason": "; ".join(reasons), "stage": "qpcr"}
            for label, (status, reasons) in verdicts.items()
        ],
        columns=STAGE_LEDGER_COLUMNS,
    )
    return QpcrResult(wells=wells, curves=curves, transgene=transgene, ledger=ledger, plots=plots)


Verdicts = dict[str, tuple[str, list[str]]]  # ledger label -> (status, reasons)


def _read_plates(
    plates: Sequence[tuple[str | Path, str]],
    car_target: str,
    max_unzipped_mb: float,
    cq_range: tuple[float, float],
) -> tuple[pd.DataFrame, Verdicts]:
    """The wells of every usable plate, and each file's verdict so far."""
    labels = [label for _, label in plates]
    verdicts: Verdicts = {}
    tables = []
    for (path, label), plate_id in zip(plates, _plate_ids(labels), strict=True):
        try:
            wells = read_plate(
                path,
                target=car_target,
                plate=plate_id,
                max_unzipped_mb=max_unzipped_mb,
                cq_range=cq_range,
            )
        except InputError as error:
            verdicts[label] = ("rejected", [str(error)])
            continue
        wells["source_file"] = label
        targets = sorted(set(wells["target"]))
        if car_target not in targets:
            reason = (
                f"no wells of the CAR assay {car_target!r} (targets on this plate: "
                f"{', '.join(targets)}); check qpcr.car_target"
            )
            verdicts[label] = ("rejected", [reason])
            continue
        verdicts[label] = ("ok", _implausible_note(wells))
        tables.append(wells)
    wells = pd.concat(tables, ignore_index=True) if tables else _empty_wells()
    return wells, verdicts


def _curve_verdicts(
    curves: pd.DataFrame,
    verdicts: Verdicts,
    label_of: Mapping[str, str],
    assay_targets: tuple[str, str | None],
) -> None:
    """A failed CAR (or reference-gene) curve rejects its plate; other curve problems and
    amplified NTCs become notes."""
    for curve in curves.to_dict("records"):
        label = label_of.get(curve["plate"])
        if label is None:
            continue
        status, reasons = verdicts[label]
        if not bool(curve["pass"]):
            if curve["target"] in assay_targets:
                status = "rejected"
            reasons.append(f"standard curve {curve['target']} failed: {curve['reason']}")
        if int(curve.get("n_ntc_amplified", 0) or 0) > 0:
            reasons.append(f"NTC amplified ({curve['target']}): {curve['ntc_wells']}")
        verdicts[label] = (status, reasons)


def _unknown_sample_notes(
    transgene: pd.DataFrame,
    problems: Mapping[str, str],
    verdicts: Verdicts,
    label_of: Mapping[str, str],
) -> None:
    for plate, group in transgene.groupby("plate"):
        unknown = sorted(set(group["sample"]) & set(problems))
        if unknown and plate in label_of:
            _, reasons = verdicts[label_of[plate]]
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            reasons.append(f"{len(unknown)} sample(s) without a known subject/day: {shown}")


def _draw_curves(wells: pd.DataFrame, curves: pd.DataFrame, plot_dir: str | Path) -> list[Path]:
    from .plots import plot_standard_curve

    # The folder exists even when no plate gave a curve: it is a declared output.
    Path(plot_dir).mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    plots = []
    for curve in curves.to_dict("records"):
        name = safe_file_name(f"{curve['plate']}_{curve['target']}")
        while name in used:  # two ids that differ only in odd characters
            name += "_"
        used.add(name)
        plots.append(plot_standard_curve(wells, curve, Path(plot_dir) / f"{name}.png"))
    return plots


def _implausible_note(wells: pd.DataFrame) -> list[str]:
    flagged = wells[wells["flag"] != ""]
    if flagged.empty:
        return []
    shown = "; ".join(
        f"{row.well}: {str(row.flag).split(': ', 2)[-1]}" for row in flagged.head(5).itertuples()
    )
    more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
    return [f"{len(flagged)} well(s) left out as implausible ({shown}{more})"]


def _empty_wells() -> pd.DataFrame:
    from .wells import WELL_COLUMNS, WELL_EXTRA_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype=object) for c in WELL_COLUMNS + WELL_EXTRA_COLUMNS})
