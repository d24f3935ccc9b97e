"""Figures are redrawn only when what they show changed, and a figure copied from the
cache is byte for byte the one drawing would write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.pk.kinetics import TYPICAL, stein_curve
from ckpk.report.figure_cache import FigureCache
from ckpk.report.pk_figures import draw_pk_figures

DAYS = np.array([-7, 0, 1, 4, 7, 10, 14, 21, 28, 56, 90], dtype=float)


def _trial(scales: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for subject, scale in scales.items():
        level = stein_curve(DAYS, TYPICAL) * scale
        for day, value in zip(DAYS, level, strict=True):
            blq = bool(value < 50.0)
            rows.append(
                {
                    "subject_id": subject,
                    "analyte": "car_copies_per_ug",
                    "day": day,
                    "value": np.nan if blq else value,
                    "unit": "copies/ug gDNA",
                    "blq": blq,
                    "lloq": 50.0,
                }
            )
    subjects = pd.DataFrame({"subject_id": list(scales), "dose_level": "DL1", "dose": 1e6})
    return pd.DataFrame(rows), subjects


def _draw(concentrations, subjects, out: Path, cache: FigureCache | None) -> dict[str, bytes]:
    empty = pd.DataFrame(columns=["subject_id", "analyte"])
    draw_pk_figures(
        concentrations, empty, empty, subjects, out / "fits", out / "spaghetti", cache=cache
    )
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_cached_figures_equal_drawn_ones_and_only_changed_ones_are_redrawn(tmp_path):
    concentrations, subjects = _trial({"S01": 1.0, "S02": 3.0, "S03": 0.5})
    plain = _draw(concentrations, subjects, tmp_path / "plain", None)
    assert len(plain) == 4  # three fit plots, one spaghetti

    first = FigureCache(tmp_path / "cache")
    assert _draw(concentrations, subjects, tmp_path / "run1", first) == plain
    assert (first.drawn, first.copied) == (4, 0)

    again = FigureCache(tmp_path / "cache")
    assert _draw(concentrations, subjects, tmp_path / "run2", again) == plain
    assert (again.drawn, again.copied) == (0, 4)

    # One more reading for S02: its plot and the spaghetti change, S01's and S03's do not
    # (S03's rows move down the table, as in a real run).
    extra = (
        concentrations[concentrations["subject_id"] == "S02"]
        .iloc[[-1]]
        .assign(day=120.0, value=60.0, blq=False)
    )
    grown = pd.concat([concentrations, extra], ignore_index=True).sort_values(
        ["subject_id", "day"], kind="mergesort", ignore_index=True
    )
    third = FigureCache(tmp_path / "cache")
    redrawn = _draw(grown, subjects, tmp_path / "run3", third)
    assert (third.drawn, third.copied) == (2, 2)
    assert redrawn["fits/S01_car_copies_per_ug.png"] == plain["fits/S01_car_copies_per_ug.png"]
    assert redrawn["fits/S02_car_copies_per_ug.png"] != plain["fits/S02_car_copies_per_ug.png"]
    assert redrawn == _draw(grown, subjects, tmp_path / "plain3", None)

    # The entries of figures no longer drawn are removed; the cache holds one run's worth.
    third.prune()
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_a_different_value_anywhere_in_a_row_is_a_different_figure(tmp_path):
    cache = FigureCache(tmp_path / "cache")
    seen = []

    def draw(row, path):
        seen.append(dict(row))
        Path(path).write_bytes(repr(sorted(row.items())).encode())
        return Path(path)

    for row in (
        {"cmax": 1.0},
        {"cmax": 1.0},
        {"cmax": 1.0000001},
        {"cmax": np.nan},
        {"cmax": None},
    ):
        cache.figure(tmp_path / "f.png", draw, row, tmp_path / "f.png")
    assert len(seen) == 4  # the repeated row alone came from the cache
