"""Simulated qPCR plates in two real export formats.

Each 96-well plate carries a 6-level standard curve (10 to 10^6 transgene copies per
reaction, in triplicate), three no-template controls and up to 25 unknown samples in
triplicate. A well with N template molecules (Poisson-distributed around the
expected copies, which is what makes low-copy replicates scatter) crosses the
threshold at Cq = intercept + slope·log10(N) plus a small read noise; a well with no
molecule never amplifies and is exported as the vendor's "no Cq" word.

Writers imitate the instruments' real exports (``tests/data/qpcr`` and ``tests/data/shared``):
- QuantStudio 7 Flex Results ``.txt`` (``* key = value`` header, ``[Results]`` block,
  ``Undetermined``, thousands commas in Quantity, the instrument's own curve columns);
- Bio-Rad CFX Maestro "Quantification Cq Results" ``.csv`` (empty first column,
  ``Std-01``/``Unkn-01``/``NTC`` contents, ``NaN``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STANDARD_COPIES = (1e6, 1e5, 1e4, 1e3, 1e2, 1e1)
REPLICATES = 3
NTC_WELLS = 3
ROWS = "ABCDEFGH"
CQ_READ_NOISE = 0.12


@dataclass(frozen=True)
class PlateCurve:
    """The true Cq response of one plate's assay."""

    slope: float
    intercept: float

    @property
    def efficiency_pct(self) -> float:
        return (10.0 ** (-1.0 / self.slope) - 1.0) * 100.0


@dataclass(frozen=True)
class Well:
    position: str  # A1 .. H12
    index: int  # 1 .. 96, row-major as the instruments number them
    sample: str
    target: str
    task: str  # standard, unknown, ntc
    quantity: float | None  # known copies for standards
    cq: float | None  # None: not amplified


def well_positions() -> list[tuple[int, str]]:
    return [(r * 12 + c + 1, f"{ROWS[r]}{c + 1}") for r in range(8) for c in range(12)]


def unknowns_per_plate() -> int:
    return (96 - len(STANDARD_COPIES) * REPLICATES - NTC_WELLS) // REPLICATES


def draw_cq(molecules: int, curve: PlateCurve, rng: np.random.Generator) -> float | None:
    if molecules <= 0:
        return None
    cq = curve.intercept + curve.slope * math.log10(molecules) + rng.normal(0.0, CQ_READ_NOISE)
    return round(float(cq), 3)


def layout_plate(
    samples: list[tuple[str, float]],
    curve: PlateCurve,
    target: str,
    rng: np.random.Generator,
) -> list[Well]:
    """Place standards, NTCs and ``samples`` (name, expected copies per reaction)."""
    positions = iter(well_positions())
    wells: list[Well] = []
    for copies in STANDARD_COPIES:
        for _ in range(REPLICATES):
            index, pos = next(positions)
            n = int(rng.poisson(copies))
            wells.append(
                Well(
                    pos,
                    index,
                    f"STD {copies:g}",
                    target,
                    "standard",
                    copies,
                    draw_cq(n, curve, rng),
                )
            )
    for _ in range(NTC_WELLS):
        index, pos = next(positions)
        wells.append(Well(pos, index, "NTC", target, "ntc", None, None))
    for name, expected in samples:
        for _ in range(REPLICATES):
            index, pos = next(positions)
            n = int(rng.poisson(expected))
            wells.append(Well(pos, index, name, target, "unknown", None, draw_cq(n, curve, rng)))
    return wells


def _fit(wells: list[Well]) -> tuple[float, float, float]:
    """The instrument's own fit: OLS of Cq on log10(quantity) over standard wells."""
    x = [math.log10(w.quantity) for w in wells if w.task == "standard" and w.cq is not None]
    y = [w.cq for w in wells if w.task == "standard" and w.cq is not None]
    slope, intercept = np.polyfit(x, y, 1)
    r2 = float(np.corrcoef(x, y)[0, 1] ** 2)
    return float(slope), float(intercept), r2


def _replicate_stats(wells: list[Well], slope: float, intercept: float) -> dict[str, tuple]:
    stats: dict[str, tuple] = {}
    for name in {w.sample for w in wells if w.task != "ntc"}:
        cqs = [w.cq for w in wells if w.sample == name and w.cq is not None]
        qty = [10 ** ((c - intercept) / slope) for c in cqs]
        stats[name] = (
            float(np.mean(cqs)) if cqs else None,
            float(np.std(cqs, ddof=1)) if len(cqs) > 1 else None,
            float(np.mean(qty)) if qty else None,
            float(np.std(qty, ddof=1)) if len(qty) > 1 else None,
        )
    return stats


def _num(value: float | None, digits: int = 3, thousands: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}" if thousands else f"{value:.{digits}f}"


# QuantStudio 7 Flex "Export > Results" columns, in the instrument's order.
_QUANTSTUDIO_COLUMNS = (
    "Well",
    "Well Position",
    "Omit",
    "Sample Name",
    "Target Name",
    "Task",
    "Reporter",
    "Quencher",
    "CT",
    "Ct Mean",
    "Ct SD",
    "Quantity",
    "Quantity Mean",
    "Quantity SD",
    "Automatic Ct Threshold",
    "Ct Threshold",
    "Automatic Baseline",
    "Baseline Start",
    "Baseline End",
    "Comments",
    "Y-Intercept",
    "R(superscript 2)",
    "Slope",
    "Efficiency",
)


def write_quantstudio_txt(path: Path, wells: list[Well], run_date: str) -> None:
    """QuantStudio 7 Flex "Export > Results" text file (tab-separated)."""
    slope, intercept, r2 = _fit(wells)
    fit = [_num(intercept), _num(r2), _num(slope), _num((10 ** (-1 / slope) - 1) * 100)]
    stats = _replicate_stats(wells, slope, intercept)
    lines = [f"* {k} = {v}" for k, v in _quantstudio_header(path, run_date).items()]
    lines += ["", "[Results]", "\t".join(_QUANTSTUDIO_COLUMNS)]
    for w in wells:
        cells = _quantstudio_cells(
            w, stats.get(w.sample, (None, None, None, None)), slope, intercept
        )
        lines.append("\t".join(cells + fit))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _quantstudio_header(path: Path, run_date: str) -> dict[str, str]:
    return {
        "Block Type": "96-Well Block (0.2mL)",
        "Chemistry": "TAQMAN",
        "Experiment File Name": f"D:\\qPCR\\CAR-T\\{path.stem}.eds",
        "Experiment Name": path.stem,
        "Experiment Run End Time": f"{run_date} 04:12:51 PM CET",
        "Experiment Type": "Standard Curve",
        "Instrument Name": "QS7-278880031",
        "Instrument Serial Number": "278880031",
        "Instrument Type": "QuantStudio(TM) 7 Flex System",
        "Passive Reference": "ROX",
        "Quantification Cycle Method": "Ct",
        "Signal Smoothing On": "true",
        "Stage/ Cycle where Analysis is performed": "Stage 2, Step 2",
        "User Name": "NA",
    }


def _quantstudio_cells(w: Well, stats: tuple, slope: float, intercept: float) -> list[str]:
    """One well's cells up to "Comments" (the plate's fit follows in every row)."""
    cq_mean, cq_sd, q_mean, q_sd = stats
    if w.task == "standard":
        quantity = w.quantity
    elif w.cq is not None:
        quantity = 10 ** ((w.cq - intercept) / slope)
    else:
        quantity = None
    return [
        str(w.index),
        w.position,
        "false",
        "" if w.task == "ntc" else w.sample,
        w.target,
        w.task.upper(),
        "FAM",
        "NFQ-MGB",
        "Undetermined" if w.cq is None else _num(w.cq),
        _num(cq_mean),
        _num(cq_sd),
        _num(quantity, thousands=True),
        "" if w.task == "standard" else _num(q_mean, thousands=True),
        "" if w.task == "standard" else _num(q_sd, thousands=True),
        "true",
        "0.120",
        "true",
        "3",
        "24",
        "",
    ]


def write_cfx_csv(path: Path, wells: list[Well]) -> None:
    """Bio-Rad CFX Maestro "Quantification Cq Results" CSV export."""
    slope, intercept, _ = _fit(wells)
    stats = _replicate_stats(wells, slope, intercept)
    std_number = {q: i + 1 for i, q in enumerate(STANDARD_COPIES)}
    unknown_number: dict[str, int] = {}
    lines = [
        ",Well,Fluor,Target,Content,Sample,Biological Set Name,Cq,Cq Mean,Cq Std. Dev,"
        "Starting Quantity (SQ),Log Starting Quantity,SQ Mean,SQ Std. Dev,Set Point,Well Note"
    ]
    for w in wells:
        row_letter, col = w.position[0], int(w.position[1:])
        if w.task == "standard":
            content = f"Std-{std_number[w.quantity]:02d}"
            sample = ""
            sq = w.quantity
        elif w.task == "ntc":
            content, sample, sq = "NTC", "", None
        else:
            unknown_number.setdefault(w.sample, len(unknown_number) + 1)
            content = f"Unkn-{unknown_number[w.sample]:02d}"
            sample = w.sample
            sq = 10 ** ((w.cq - intercept) / slope) if w.cq is not None else None
        cq_mean, cq_sd, q_mean, q_sd = stats.get(w.sample, (None, None, None, None))
        if w.task == "standard":
            q_mean, q_sd = w.quantity, 0.0
        row = [
            "",
            f"{row_letter}{col:02d}",
            "FAM",
            w.target,
            content,
            sample,
            "",
            "NaN" if w.cq is None else repr(float(w.cq)),
            "NaN" if cq_mean is None else repr(cq_mean),
            "0" if cq_sd is None else repr(cq_sd),
            "NaN" if sq is None else repr(float(sq)),
            "NaN" if sq is None else repr(math.log10(sq)),
            "NaN" if q_mean is None else repr(q_mean),
            "0" if q_sd is None else repr(q_sd),
            "60",
            "",
        ]
        lines.append(",".join(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
