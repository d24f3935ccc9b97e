"""PK plots are written as real PNG files for every kind of profile, fittable or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ckpk.pk.kinetics import TYPICAL, stein_curve
from ckpk.pk.model import fit_profile
from ckpk.report.pk_plots import plot_fit, plot_spaghetti

DAYS = np.array([-7, 0, 1, 4, 7, 10, 14, 21, 28, 56, 90, 180], dtype=float)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _profile(subject: str, scale: float, lloq: float = 50.0) -> pd.DataFrame:
    level = stein_curve(DAYS, TYPICAL) * scale
    blq = level < lloq
    return pd.DataFrame(
        {
            "subject_id": subject,
            "analyte": "car_copies_per_ug",
            "day": DAYS,
            "value": np.where(blq, np.nan, level),
            "unit": "copies/ug gDNA",
            "blq": blq,
            "lloq": lloq,
        }
    )


def _assert_png(path, min_bytes=2000):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_plot_fit_with_curve_and_nca_marks(tmp_path):
    obs = _profile("S01", 1.0)
    use = obs[obs["day"] >= 0]
    fit = fit_profile(use["day"], use["value"], use["blq"], use["lloq"])
    assert fit["converged"]
    fit_row = {"subject_id": "S01", "analyte": "car_copies_per_ug", "unit": "copies/ug", **fit}
    nca_row = pd.Series({"cmax": float(use["value"].max()), "tmax": 10.0, "unit": "copies/ug"})
    path = plot_fit(obs, fit_row, nca_row, tmp_path / "plots" / "S01_car.png")
    assert path == tmp_path / "plots" / "S01_car.png"
    _assert_png(path)


@pytest.mark.parametrize("lloq", [50.0, np.nan])
def test_plot_fit_blq_only_profile(tmp_path, lloq):
    obs = _profile("S02", 1e-6, lloq=50.0).assign(lloq=lloq)  # every sample BLQ
    assert obs["blq"].all()
    fit = fit_profile(obs["day"], obs["value"], obs["blq"], obs["lloq"])
    assert fit["converged"] is False
    nca_row = {"cmax": 0.0, "tmax": np.nan}
    path = plot_fit(obs, fit, nca_row, tmp_path / "blq.png")
    _assert_png(path)


def test_plot_fit_without_fit_or_nca(tmp_path):
    path = plot_fit(_profile("S03", 2.0), None, None, tmp_path / "bare.png")
    _assert_png(path)
    empty = _profile("S03", 2.0).iloc[0:0]
    _assert_png(plot_fit(empty, None, None, tmp_path / "empty.png"))


def test_plot_spaghetti_by_dose_level(tmp_path):
    table = pd.concat(
        [
            _profile("S01", 1.0),
            _profile("S02", 0.1),
            _profile("S03", 1e-6),  # non-responder: all BLQ, drawn at the LLOQ
            _profile("S04", 3.0),  # not in the subject sheet: dose level "unknown"
            _profile("S01", 1.0).assign(analyte="car_per_ul"),
        ]
    )
    subjects = pd.DataFrame({"subject_id": ["S01", "S02", "S03"], "dose_level": ["1", "2", "2"]})
    path = plot_spaghetti(table, subjects, "car_copies_per_ug", tmp_path / "spaghetti.png")
    _assert_png(path)
    # An analyte with no rows still gives a (labelled, empty) figure rather than an error.
    _assert_png(plot_spaghetti(table, None, "b_cells_per_ul", tmp_path / "none.png"), 1000)


def _tick_labels(values: list[float]) -> list[str]:
    """The y tick labels a log axis from _log_axis shows for these levels, once drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ckpk.report.pk_plots import _log_axis

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(range(len(values)), values)
    _log_axis(ax, values)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    ticks = ax.yaxis.get_major_ticks() + ax.yaxis.get_minor_ticks()
    return [
        t.label1.get_text()
        for t in ticks
        if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high
    ]


def test_log_axis_labels_are_plain_numbers_and_a_narrow_range_still_has_some():
    wide = _tick_labels([0.5, 30.0, 2000.0, 150000.0])
    assert {"1", "10", "100", "1,000", "10,000", "100,000"} <= set(wide)
    assert not any("10^" in label or "times" in label or "e+" in label for label in wide)
    # 20-60 spans less than a decade after the factor-3 margins: 10 and 100 alone would
    # leave a panel with one number; the 2-3-5 ticks in between are labelled too.
    narrow = _tick_labels([20.0, 60.0])
    assert len(narrow) >= 3, narrow
    assert all(label.replace(",", "").replace(".", "").isdigit() for label in narrow)
