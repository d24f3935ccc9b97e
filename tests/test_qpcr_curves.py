"""Standard curves against the instrument software's own fits and hand-worked cases."""

from __future__ import annotations

import csv
import math
import re
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import reference_path

from ckpk.errors import ConfigError
from ckpk.qpcr import (
    CURVE_COLUMNS,
    efficiency_pct,
    plot_standard_curve,
    read_plate,
    standard_curves,
    well_copies,
)

pytestmark = pytest.mark.filterwarnings("ignore:Workbook contains no default style")


def qpcr(*parts: str):
    return reference_path("data", "qpcr", *parts)


def only(curves: pd.DataFrame) -> pd.Series:
    assert len(curves) == 1
    return curves.iloc[0]


def make_wells(points, plate="P1", target="CAR", extra=()):
    """Wells table from (well, task, cq, quantity[, omit]) tuples."""
    rows = []
    for i, point in enumerate(list(points) + list(extra)):
        well, task, cq, quantity, *omit = point
        rows.append(
            {
                "plate": plate,
                "well": well or f"W{i}",
                "sample": "",
                "target": target,
                "task": task,
                "cq": cq,
                "quantity": quantity,
                "omit": bool(omit and omit[0]),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- instrument fits


def test_example04_reproduces_quantstudio_fit():
    path = qpcr("quantstudio", "appbio_quantstudio_example04.txt")
    curve = only(standard_curves(read_plate(path)))
    # README / the file's own columns: slope −3.383, intercept 39.814, R² 0.997, E 97.505 %
    assert round(curve["slope"], 3) == -3.383
    assert round(curve["intercept"], 3) == 39.814
    assert round(curve["r2"], 3) == 0.997
    assert round(curve["efficiency"], 1) == 97.5
    lines = path.read_text().splitlines()
    rows = list(csv.DictReader(lines[lines.index("[Results]") + 1 :], delimiter="\t"))
    # The file prints 97.505; the software fitted unrounded Ct, the export rounds Ct to
    # 3 decimals, which moves the refit efficiency by 0.004 %.
    assert float(rows[0]["Efficiency"]) == 97.505
    assert curve["efficiency"] == pytest.approx(97.505, abs=0.01)
    assert curve["n_points"] == 20 and curve["n_levels"] == 5 and bool(curve["pass"])
    assert (curve["lowest_standard"], curve["highest_standard"]) == (1250.0, 20000.0)


def test_example04_well_quantities_match_instrument():
    path = qpcr("quantstudio", "appbio_quantstudio_example04.txt")
    wells = read_plate(path)
    copies = well_copies(wells, standard_curves(wells))
    unknown = wells["task"] == "unknown"
    # The instrument computed Quantity from unrounded Ct; the export rounds Ct to 3
    # decimals (±0.0005 cycles ≈ ±0.04 % in copies).
    ratio = copies[unknown] / wells.loc[unknown, "instrument_quantity"]
    assert np.allclose(ratio, 1.0, atol=6e-4)


def test_design_and_analysis_reproduces_software_fit():
    path = qpcr(
        "quantstudio", "appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx"
    )
    wells = read_plate(path)
    curve = only(standard_curves(wells))
    assert round(curve["slope"], 4) == -3.2767
    assert round(curve["intercept"], 4) == 39.9434
    assert round(curve["r2"], 5) == 0.99717
    assert round(curve["efficiency"], 2) == 101.92
    # Full-precision R² and efficiency printed on the 'Standard Curve Result' sheet.
    sheet = list(
        openpyxl.load_workbook(path, read_only=True, data_only=True)[
            "Standard Curve Result"
        ].iter_rows(values_only=True)
    )
    header = list(sheet[24])
    first = sheet[25]
    assert curve["r2"] == pytest.approx(first[header.index("R2")], rel=1e-9)
    assert curve["efficiency"] == pytest.approx(first[header.index("Efficiency")], rel=1e-9)
    # ... and the software's per-well quantities of the unknowns, which it computes
    # with its printed (rounded) slope and intercept: with those our per-well formula
    # gives its numbers exactly, with our unrounded fit within 0.02 %.
    quantity = {
        r[header.index("Well Position")]: r[header.index("Quantity")]
        for r in sheet[25:]
        if r[header.index("Task")] == "UNKNOWN"
    }
    unknown = wells["task"] == "unknown"
    printed = pd.DataFrame(
        {
            "plate": [curve["plate"]],
            "target": [curve["target"]],
            "slope": [first[header.index("Slope")]],
            "intercept": [first[header.index("Y-Intercept")]],
        }
    )
    assert (printed["slope"].item(), printed["intercept"].item()) == (-3.2767, 39.9434)
    for curves, rel in ((printed, 1e-12), (standard_curves(wells), 2e-4)):
        copies = well_copies(wells, curves)
        ours = dict(zip(wells.loc[unknown, "well"], copies[unknown], strict=True))
        assert ours.keys() == quantity.keys() and len(ours) == 288
        assert all(ours[w] == pytest.approx(quantity[w], rel=rel) for w in ours)


def test_results_only_refits_not_the_stale_slope():
    path = qpcr("quantstudio", "example_quantsudio_results_only.txt")
    curve = only(standard_curves(read_plate(path)))
    assert "-3.196" in path.read_text()  # the stale value embedded in the export
    assert round(curve["slope"], 3) == -3.135
    # Two standard levels (1e8, 1e7) only: fitted, but below the 3-level minimum.
    assert not curve["pass"]
    assert curve["reason"] == "only 2 standard levels (need ≥ 3)"
    # A lab accepting two levels gets a passing curve (efficiency 108.4 % is in range).
    relaxed = only(standard_curves(read_plate(path), {"min_levels": 2}))
    assert bool(relaxed["pass"]) and round(relaxed["efficiency"], 1) == 108.4


def test_stepone_rdml_efficiency_matches_its_target_record():
    path = qpcr("rdml", "stepone_std.rdml")
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("rdml_data.xml").decode()
    written = float(re.search(r"<amplificationEfficiency>([^<]+)<", xml).group(1))
    curve = only(standard_curves(read_plate(path)))
    assert written == 93.91181
    assert curve["efficiency"] == pytest.approx(written, abs=5e-3)
    # Three NTCs written as Cq 40.0 are not amplified NTCs.
    assert curve["n_ntc"] == 3 and curve["n_ntc_amplified"] == 0


# --------------------------------------------------------------------------- hand-worked


def ideal(slope=-3.32, intercept=38.0, levels=(1e1, 1e2, 1e3, 1e4, 1e5), reps=3, spread=0.0):
    points = []
    for q in levels:
        for r in range(reps):
            offset = spread * (r - (reps - 1) / 2)
            points.append((None, "standard", intercept + slope * math.log10(q) + offset, q))
    return points


def test_exact_line_and_efficiency_definition():
    curve = only(standard_curves(make_wells(ideal())))
    assert curve["slope"] == pytest.approx(-3.32, abs=1e-12)
    assert curve["intercept"] == pytest.approx(38.0, abs=1e-12)
    assert curve["r2"] == pytest.approx(1.0)
    # E = 10^(−1/slope) − 1, in percent: slope −3.32 → 100.08 %; −3.3219 → 100.00 %
    assert curve["efficiency"] == pytest.approx((10 ** (1 / 3.32) - 1) * 100)
    assert efficiency_pct(-1 / math.log10(2)) == pytest.approx(100.0)
    assert list(standard_curves(make_wells(ideal())).columns[:9]) == CURVE_COLUMNS


def test_fit_uses_every_well_not_replicate_means():
    # Unequal replicate numbers make the two fits differ.
    points = ideal(reps=1) + [(None, "standard", 30.0, 1e1), (None, "standard", 30.5, 1e1)]
    curve = only(standard_curves(make_wells(points)))
    x = [math.log10(p[3]) for p in points]
    y = [p[2] for p in points]
    slope, intercept = np.polyfit(x, y, 1)
    assert curve["slope"] == pytest.approx(slope) and curve["intercept"] == pytest.approx(intercept)
    means = pd.DataFrame({"x": x, "y": y}).groupby("x")["y"].mean()
    assert curve["slope"] != pytest.approx(np.polyfit(means.index, means.values, 1)[0], rel=1e-3)


def test_omitted_and_not_amplified_standards_are_left_out():
    wild = [("Z1", "standard", 20.0, 1e1, True), ("Z2", "standard", math.nan, 1e5)]
    curve = only(standard_curves(make_wells(ideal(), extra=wild)))
    assert curve["n_points"] == 15
    assert curve["slope"] == pytest.approx(-3.32)


def test_failed_efficiency():
    curve = only(standard_curves(make_wells(ideal(slope=-3.85))))
    eff = (10 ** (1 / 3.85) - 1) * 100
    assert not curve["pass"]
    assert curve["reason"] == f"efficiency {eff:.1f} % outside 90–110 %"
    assert curve["reason"] == "efficiency 81.9 % outside 90–110 %"  # 10^(1/3.85) = 1.8189
    relaxed = only(standard_curves(make_wells(ideal(slope=-3.85)), {"efficiency_min": 80}))
    assert bool(relaxed["pass"])


def test_failed_r2_and_single_level():
    noisy = ideal(reps=2, spread=1.6)  # ±0.8 cycles around each level
    curve = only(standard_curves(make_wells(noisy)))
    assert curve["r2"] < 0.98 and not curve["pass"] and curve["reason"].startswith("R² 0.9")
    one = only(standard_curves(make_wells(ideal(levels=(1e3,)))))
    assert not one["pass"] and one["reason"] == "only 1 standard level (need ≥ 3)"
    assert math.isnan(one["slope"]) and one["n_points"] == 3


def test_plate_without_standards_and_amplified_ntc():
    points = [
        ("A1", "unknown", 25.0, math.nan),
        ("A2", "ntc", 35.123, math.nan),
        ("A3", "ntc", math.nan, math.nan),
    ]
    curve = only(standard_curves(make_wells(points)))
    assert not curve["pass"] and curve["reason"] == "no standard wells"
    assert (curve["n_ntc"], curve["n_ntc_amplified"]) == (2, 1)
    assert curve["ntc_wells"] == "A2 (Cq 35.12)"


def test_one_row_per_plate_and_target():
    wells = pd.concat(
        [
            make_wells(ideal(), "P1", "CAR"),
            make_wells(ideal(), "P1", "RPP30"),
            make_wells(ideal(slope=-3.4), "P2", "CAR"),
        ]
    )
    curves = standard_curves(wells)
    assert list(zip(curves["plate"], curves["target"], strict=True)) == [
        ("P1", "CAR"),
        ("P1", "RPP30"),
        ("P2", "CAR"),
    ]
    assert curves["slope"].round(6).tolist() == [-3.32, -3.32, -3.4]


def test_bad_acceptance_is_a_config_error():
    with pytest.raises(ConfigError, match="qpcr.acceptance.r2_min"):
        standard_curves(make_wells(ideal()), {"r2_min": "high"})


def test_plot_standard_curve(tmp_path):
    wells = make_wells(
        ideal(), extra=[("B1", "unknown", 28.0, math.nan), ("B2", "standard", 27.0, 1e3, True)]
    )
    curve = only(standard_curves(wells))
    out = plot_standard_curve(wells, curve, tmp_path / "curves" / "P1_CAR.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = only(standard_curves(make_wells(ideal(levels=(1e3,)))))
    out = plot_standard_curve(make_wells(ideal(levels=(1e3,))), failed, tmp_path / "f.png")
    assert out.stat().st_size > 1000
