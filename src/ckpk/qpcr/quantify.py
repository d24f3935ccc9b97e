"""Transgene copies per µg genomic DNA from unknown wells and standard curves (docs/rules.md).

Rules, in the order they are applied to each plate × sample (unknown wells of the CAR
target; omitted wells are left out of everything, including ``n_rep``):

1. **Per well**: ``copies/reaction = 10^((Cq − intercept) / slope)`` with the plate's
   curve for that target. A well without a Cq (not amplified) has no copies.
2. **Replicates** (MIQE practice): ``copies_per_reaction`` is the mean of the per-well
   copies of the *amplified* replicates; ``cq_mean``/``cq_sd`` (SD with n−1) are over
   the same wells; ``n_rep`` counts non-omitted replicates and ``n_pos`` the amplified
   ones, so a 2-of-3 result reads ``n_pos`` 2, ``n_rep`` 3. Non-amplified replicates
   are not averaged in as zeros: at the copy numbers where stochastic dropout happens
   (a few copies per reaction) the result is below the LLOQ anyway, while above it a
   missing replicate is a failed well, which a zero would bias. Such a sample (some
   replicates not amplified yet the mean at or above the LLOQ) is flagged.
3. **Detection**: ``detected`` is true when any replicate amplified. No amplification
   (``n_pos`` 0) → not detected, ``blq`` true, copies empty.
4. **Quantifiable**: a sample is quantified only when at least ``min_positive_replicates``
   replicates amplified (default 2, ``qpcr.min_positive_replicates``; a sample run in
   fewer wells needs all of them) and their mean lies within the standards. Fewer
   amplified replicates, or a mean below the lowest standard in the fit (the LLOQ), give
   **detected, not quantifiable** (DNQ): ``detected`` true, ``blq`` true, copies empty and
   a flag saying which (no extrapolation; the reading stays in
   ``copies_per_reaction_reading``). A validated CAR T qPCR assay reports DNQ apart from
   "not detected" (a 1-of-3 amplification at the limit of detection is a detection, not
   a number). Above the highest standard → the value is kept and flagged.
5. **Per µg DNA**: ``copies_per_ug = copies_per_reaction ÷ (dna_ng / 1000)`` with the
   sample's ``dna_ng`` from the samples table, or ``default_dna_ng`` when it is empty
   (:data:`DEFAULT_DNA_NG`, 200 ng, unless the caller gives another).
   With a reference gene instead: ``copies_per_ug = CAR copies ÷ (reference copies / 2)
   × 151,515`` (6.6 pg DNA per diploid genome, two reference copies per cell); the
   reference copies are the sample's amplified reference-target replicates on the same
   plate, and ``dna_ng`` reports the DNA they imply. ``lloq_copies_per_ug`` is the
   lowest standard expressed the same way for that sample.
6. **Flags** (``flag``, ``; ``-separated): replicate Cq SD > 0.5; above the highest
   standard; NTC of the plate/target amplified; curve missing or failed (then no
   copies, ``blq`` empty); sample absent from the samples table; sample measured on
   more than one plate (every row is kept and flagged); reference gene missing.

Unknown wells whose sample is not in ``samples`` keep their row with empty
``subject_id``/``day`` and the flag ``sample 'X' not in the samples table``, so
nothing measured is silently dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ckpk.cells import number, text

TRANSGENE_COLUMNS = [
    "plate",
    "sample",
    "subject_id",
    "day",
    "target",
    "cq_mean",
    "cq_sd",
    "n_rep",
    "n_pos",
    "copies_per_reaction",
    "dna_ng",
    "copies_per_ug",
    "blq",
    "detected",
    "flag",
    "lloq_copies_per_ug",
]
TRANSGENE_EXTRA_COLUMNS = [
    "copies_per_reaction_reading",  # mean of amplified replicates, even outside the range
    "lloq_copies_per_reaction",  # lowest standard of the plate's curve
    "uloq_copies_per_reaction",  # highest standard of the plate's curve
    "dna_source",  # "samples table", "default", "reference gene"
    "reference_copies_per_reaction",  # mean reference-gene copies (reference mode)
]
TRANSGENE_SORT_BY = ["subject_id", "day", "plate", "sample"]

REPLICATE_SD_LIMIT = 0.5  # Cq; docs/rules.md
# Amplified replicates needed to quantify a sample (config qpcr.min_positive_replicates).
DEFAULT_MIN_POSITIVE_REPLICATES = 2
# ng genomic DNA per reaction when the samples table gives none. The one default: the
# workflow's qpcr.dna_ng (config/config.yaml), the qPCR stage and the simulator read it
# from here, so a direct call and a workflow run give the same copies per µg.
DEFAULT_DNA_NG = 200.0
CELLS_PER_UG_DNA = 151_515  # docs/rules.md: 6.6 pg genomic DNA per diploid cell
REFERENCE_COPIES_PER_CELL = 2  # diploid reference gene


def well_copies(wells: pd.DataFrame, curves: pd.DataFrame) -> pd.Series:
    """Copies per reaction of every well from its plate × target curve (NaN without).

    Uses the fitted line whether or not the curve passed acceptance; callers decide
    what a failed curve means.
    """
    lines = curves.set_index(["plate", "target"])[["slope", "intercept"]]
    key = pd.MultiIndex.from_arrays([wells["plate"], wells["target"]])
    slope = lines["slope"].reindex(key).to_numpy(float)
    intercept = lines["intercept"].reindex(key).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        copies = np.power(10.0, (wells["cq"].to_numpy(float) - intercept) / slope)
    return pd.Series(copies, index=wells.index, name="copies_per_reaction")


def quantify(
    wells: pd.DataFrame,
    curves: pd.DataFrame,
    samples: pd.DataFrame | None,
    car_target: str,
    reference_target: str | None = None,
    default_dna_ng: float = DEFAULT_DNA_NG,
    min_positive_replicates: int = DEFAULT_MIN_POSITIVE_REPLICATES,
) -> pd.DataFrame:
    """Transgene copies per µg DNA, one row per plate × sample (rules in the module doc).

    ``wells``: the wells table of one or more plates; ``curves``: their
    :func:`ckpk.qpcr.standard_curves`; ``samples``: columns ``sample``, ``subject_id``,
    ``day``, ``dna_ng`` (may be empty) and optionally ``plate`` (a row with a plate
    applies to that plate only and wins over a row without). Returns
    :data:`TRANSGENE_COLUMNS` then :data:`TRANSGENE_EXTRA_COLUMNS`.
    """
    wells = wells.copy()
    wells["copies"] = well_copies(wells, curves)
    curve_of = {(str(c["plate"]), str(c["target"])): c for c in curves.to_dict("records")}
    lookup = _SampleLookup(samples)
    unknown = wells[(wells["task"] == "unknown") & (wells["target"] == car_target)]
    reference = (
        _replicate_means(
            wells[(wells["task"] == "unknown") & (wells["target"] == reference_target)],
            curve_of,
            reference_target,
        )
        if reference_target
        else {}
    )
    reference_ntc = {
        plate: curve["ntc_wells"]
        for (plate, target), curve in curve_of.items()
        if target == reference_target and int(curve["n_ntc_amplified"]) > 0
    }
    plates = _Plates(
        curve_of,
        lookup,
        car_target,
        reference_target,
        reference,
        reference_ntc,
        default_dna_ng,
        min_positive_replicates,
    )
    rows = [
        _sample_row(str(plate), str(sample), group, plates)
        for (plate, sample), group in unknown.groupby(["plate", "sample"], sort=True)
    ]
    table = pd.DataFrame(rows, columns=TRANSGENE_COLUMNS + TRANSGENE_EXTRA_COLUMNS)
    _flag_repeated_samples(table)
    table["blq"] = table["blq"].astype("boolean")  # true / false / empty (unknown)
    table["detected"] = table["detected"].astype("boolean")
    table["n_rep"] = table["n_rep"].astype(int)
    table["n_pos"] = table["n_pos"].astype(int)
    return table


class _SampleLookup:
    """Plate sample name → (subject_id, day, dna_ng), plate-specific rows first."""

    def __init__(self, samples: pd.DataFrame | None) -> None:
        self.by_plate: dict[tuple[str, str], dict] = {}
        self.by_name: dict[str, dict] = {}
        self.duplicated: set[tuple[str, str]] = set()
        if samples is None or samples.empty:
            return
        has_plate = "plate" in samples.columns
        for row in samples.to_dict("records"):
            name = text(row.get("sample"))
            plate = text(row.get("plate")) if has_plate else ""
            entry = {
                "subject_id": text(row.get("subject_id")),
                "day": number(row.get("day")),
                "dna_ng": number(row.get("dna_ng")),
            }
            key = (plate, name)
            target = self.by_plate if plate else self.by_name
            index = key if plate else name
            if index in target:
                self.duplicated.add(key)
                continue
            target[index] = entry

    def get(self, plate: str, sample: str) -> tuple[dict | None, str]:
        if (plate, sample) in self.by_plate:
            dup = (plate, sample) in self.duplicated
            return self.by_plate[(plate, sample)], "listed twice in the samples table" * dup
        if sample in self.by_name:
            dup = ("", sample) in self.duplicated
            return self.by_name[sample], "listed twice in the samples table" * dup
        return None, ""


def _replicate_means(
    wells: pd.DataFrame, curve_of: Mapping[tuple[str, str], dict], target: str
) -> dict[tuple[str, str], tuple[float, str]]:
    """(plate, sample) → (mean copies of amplified replicates, problem) for a target."""
    out: dict[tuple[str, str], tuple[float, str]] = {}
    for (plate, sample), group in wells.groupby(["plate", "sample"], sort=True):
        used = group[~group["omit"]]
        amplified = used[used["cq"].notna()]
        curve = curve_of.get((str(plate), target))
        if curve is None or not bool(curve["pass"]):
            reason = (curve or {}).get("reason") or "no standard curve"
            out[(str(plate), str(sample))] = (math.nan, f"reference curve failed: {reason}")
        elif amplified.empty:
            out[(str(plate), str(sample))] = (math.nan, "reference gene not amplified")
        else:
            out[(str(plate), str(sample))] = (float(amplified["copies"].mean()), "")
    return out


@dataclass(frozen=True)
class _Plates:
    """What quantifying a plate × sample needs besides its own wells."""

    curve_of: Mapping[tuple[str, str], dict]  # (plate, target) → standard curve row
    lookup: _SampleLookup
    car_target: str
    reference_target: str | None
    reference: Mapping[tuple[str, str], tuple[float, str]]  # (plate, sample) → copies, problem
    reference_ntc: Mapping[str, str]  # plate → amplified NTC wells of the reference target
    default_dna_ng: float
    min_positive_replicates: int


def _sample_row(plate: str, sample: str, group: pd.DataFrame, plates: _Plates) -> dict:
    """The transgene row of one plate × sample: rules 1 to 6 of the module doc."""
    flags: list[str] = []
    used = group[~group["omit"]]
    amplified = used[used["cq"].notna()]
    row = _replicate_row(plate, sample, plates.car_target, amplified, len(used), flags)
    _identify(row, plates.lookup, plates.default_dna_ng, flags)
    if row["n_rep"] == 0:
        flags.append("every well omitted")
    curve = plates.curve_of.get((plate, plates.car_target))
    if _curve_usable(curve, plate, plates.car_target, flags):
        _quantify_row(row, curve, amplified, plates, flags)
    row["flag"] = "; ".join(flags)
    return row


def _replicate_row(
    plate: str,
    sample: str,
    target: str,
    amplified: pd.DataFrame,
    n_rep: int,
    flags: list[str],
) -> dict:
    """A row with the replicate statistics (rule 2) and every result still empty."""
    n_pos = len(amplified)
    cq = amplified["cq"].to_numpy(float)
    cq_mean = float(cq.mean()) if n_pos else math.nan
    cq_sd = float(cq.std(ddof=1)) if n_pos > 1 else math.nan
    if n_pos > 1 and cq_sd > REPLICATE_SD_LIMIT:
        flags.append(f"replicate Cq SD {cq_sd:.2f} > {REPLICATE_SD_LIMIT:g}")
    return {
        "plate": plate,
        "sample": sample,
        "subject_id": "",
        "day": math.nan,
        "target": target,
        "cq_mean": cq_mean,
        "cq_sd": cq_sd,
        "n_rep": n_rep,
        "n_pos": n_pos,
        "copies_per_reaction": math.nan,
        "dna_ng": math.nan,
        "copies_per_ug": math.nan,
        "blq": None,
        "detected": (n_pos > 0) if n_rep > 0 else None,
        "flag": "",
        "lloq_copies_per_ug": math.nan,
        "copies_per_reaction_reading": math.nan,
        "lloq_copies_per_reaction": math.nan,
        "uloq_copies_per_reaction": math.nan,
        "dna_source": "",
        "reference_copies_per_reaction": math.nan,
    }


def _identify(row: dict, lookup: _SampleLookup, default_dna_ng: float, flags: list[str]) -> None:
    """Subject, day and DNA mass from the samples table (the default mass without one)."""
    sample = row["sample"]
    entry, sheet_problem = lookup.get(row["plate"], sample)
    if entry is None:
        label = f"sample '{sample}'" if sample else "unknown wells without a sample name"
        flags.append(f"{label} not in the samples table")
        entry = {"subject_id": "", "day": math.nan, "dna_ng": math.nan}
    elif sheet_problem:
        flags.append(f"sample '{sample}' {sheet_problem}")
    dna_ng, dna_source = entry["dna_ng"], "samples table"
    if not math.isfinite(dna_ng) or dna_ng <= 0:
        dna_ng, dna_source = float(default_dna_ng), "default"
    row.update(
        subject_id=entry["subject_id"], day=entry["day"], dna_ng=dna_ng, dna_source=dna_source
    )


def _curve_usable(curve: dict | None, plate: str, target: str, flags: list[str]) -> bool:
    """False, with a flag, when the plate has no passing curve for the target."""
    if curve is None:
        flags.append(f"no standard curve for {target} on plate {plate}")
        return False
    if int(curve["n_ntc_amplified"]) > 0:
        flags.append(f"NTC amplified on plate {plate} ({target}): {curve['ntc_wells']}")
    if not bool(curve["pass"]):
        flags.append(f"standard curve of plate {plate} ({target}) failed: {curve['reason']}")
        return False
    return True


def _quantify_row(
    row: dict, curve: dict, amplified: pd.DataFrame, plates: _Plates, flags: list[str]
) -> None:
    """Copies per reaction and per µg, BLQ and range flags (rules 1 and 3 to 5)."""
    lloq, uloq = float(curve["lowest_standard"]), float(curve["highest_standard"])
    row["lloq_copies_per_reaction"], row["uloq_copies_per_reaction"] = lloq, uloq
    n_rep, n_pos = row["n_rep"], row["n_pos"]
    reading = float(amplified["copies"].mean()) if n_pos else math.nan
    row["copies_per_reaction_reading"] = reading
    cells = _cells_in_reaction(row, plates, flags)
    per_ug = CELLS_PER_UG_DNA / cells if math.isfinite(cells) and cells > 0 else math.nan
    row["lloq_copies_per_ug"] = lloq * per_ug
    if n_rep == 0:
        return  # nothing measured: blq stays empty
    needed = min(plates.min_positive_replicates, n_rep)
    if n_pos == 0:
        row["blq"] = True
        return
    if n_pos < needed:
        row["blq"] = True
        flags.append(
            f"detected, not quantifiable: {n_pos} of {n_rep} replicates amplified "
            f"(fewer than {needed})"
        )
        return
    if reading < lloq:
        row["blq"] = True
        flags.append("detected, not quantifiable: below the lowest standard")
        return
    row["blq"] = False
    row["copies_per_reaction"] = reading
    row["copies_per_ug"] = reading * per_ug
    if reading > uloq:
        flags.append(f"above the highest standard ({uloq:g} copies/reaction)")
    if n_pos < n_rep:
        flags.append(f"{n_rep - n_pos} of {n_rep} replicates not amplified")


def _cells_in_reaction(row: dict, plates: _Plates, flags: list[str]) -> float:
    """Diploid genomes in the reaction: from the DNA mass, or from the reference gene's
    copies (then ``dna_ng`` reports the mass they imply); NaN when the reference fails."""
    target = plates.reference_target
    if not target:
        return row["dna_ng"] / 1000.0 * CELLS_PER_UG_DNA
    plate = row["plate"]
    ref_copies, problem = plates.reference.get(
        (plate, row["sample"]), (math.nan, f"no {target} wells on this plate")
    )
    row["reference_copies_per_reaction"] = ref_copies
    if plate in plates.reference_ntc:
        flags.append(f"NTC amplified on plate {plate} ({target}): {plates.reference_ntc[plate]}")
    if problem:
        flags.append(f"reference gene {target}: {problem}")
        return math.nan
    cells = ref_copies / REFERENCE_COPIES_PER_CELL
    row["dna_ng"] = cells / CELLS_PER_UG_DNA * 1000.0
    row["dna_source"] = "reference gene"
    return cells


def _flag_repeated_samples(table: pd.DataFrame) -> None:
    """Flag every row of a sample (subject/day, else name) measured on several plates."""
    if table.empty:
        return
    identity = [
        f"{s}|{d}" if s else f"sample|{n}"
        for s, d, n in zip(table["subject_id"], table["day"], table["sample"], strict=True)
    ]
    plates = pd.Series(table["plate"].to_numpy(), index=identity)
    for position, key in enumerate(identity):
        others = sorted(set(plates.loc[[key]]) - {table.at[position, "plate"]})
        if others:
            note = f"also measured on plate {', '.join(others)}"
            current = table.at[position, "flag"]
            table.at[position, "flag"] = f"{current}; {note}" if current else note
