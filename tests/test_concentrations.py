"""The concentrations table from hand-made flow and qPCR results (numbers worked by hand)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ckpk.errors import InputError
from ckpk.pk.concentrations import build_concentrations, combine_repeats, validate_concentrations

SUBJECTS = pd.DataFrame({"subject_id": ["S01", "S02"], "dose_level": ["DL1", "DL2"]})


def _car_t(**overrides) -> pd.DataFrame:
    row = {
        "file": "flow/S01_D7.fcs",
        "subject_id": "S01",
        "day": 7.0,
        "car_count": 150,
        "cd3_count": 6000,
        "car_pct_cd3": 2.5,
        "car_per_ul": 15.0,
        "blq": False,
        "b_cells_per_ul": 0.05,
        "lloq_per_ul": 2.0,
        "lloq_pct_cd3": 20 / 6000 * 100,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def test_flow_rows_carry_value_blq_lloq_and_source() -> None:
    table = build_concentrations(_car_t(), None, SUBJECTS).set_index("analyte")
    assert table.loc["car_per_ul", "value"] == 15.0
    assert table.loc["car_per_ul", "lloq"] == 2.0
    assert table.loc["car_per_ul", "unit"] == "cells/uL"
    assert table.loc["car_pct_cd3", "lloq"] == pytest.approx(1 / 3)
    # B cells at 0.05/µL are below the 2/µL that 20 events stand for: BLQ.
    assert bool(table.loc["b_cells_per_ul", "blq"])
    assert (table["source"] == "flow/S01_D7.fcs").all()


def test_flow_without_absolute_count_keeps_percent_only() -> None:
    car_t = _car_t(car_per_ul=np.nan, lloq_per_ul=np.nan, b_cells_per_ul=np.nan)
    table = build_concentrations(car_t, None, SUBJECTS)
    assert list(table["analyte"]) == ["car_pct_cd3"]


def _transgene(rows: list[dict]) -> pd.DataFrame:
    base = {
        "plate": "P1",
        "sample": "S01_D14",
        "subject_id": "S01",
        "day": 14.0,
        "copies_per_ug": np.nan,
        "blq": True,
        "lloq_copies_per_ug": 100.0,
    }
    return pd.DataFrame([{**base, **row} for row in rows])


def test_qpcr_repeats_combine_as_the_median_with_blq_ranked_lowest() -> None:
    """Three repeats (BLQ, 1000, 3000): the median is 1000; the BLQ repeat is neither
    dropped (the old mean of quantifiable repeats gave 2000) nor taken as 0."""
    transgene = _transgene(
        [
            {"plate": "P1", "copies_per_ug": 1000.0, "blq": False},
            {"plate": "P2", "copies_per_ug": 3000.0, "blq": False, "lloq_copies_per_ug": 80.0},
            {"plate": "P3", "blq": True},
        ]
    )
    files = {"P1": "qpcr/P1.txt", "P2": "qpcr/P2.csv", "P3": "qpcr/P3.txt"}
    row = build_concentrations(None, transgene, SUBJECTS, files).iloc[0]
    assert row["value"] == 1000.0 and not row["blq"]
    assert row["lloq"] == 80.0
    assert row["source"] == "qpcr/P1.txt; qpcr/P2.csv; qpcr/P3.txt"


@pytest.mark.parametrize(
    ("repeats", "expected"),
    [
        ([(1000.0, False), (np.nan, True)], (math.nan, True)),  # 1 of 2: not overruled
        ([(1000.0, False), (3000.0, False)], (2000.0, False)),  # even: mean of the middle
        ([(np.nan, True), (np.nan, True), (500.0, False)], (math.nan, True)),
        ([(400.0, False), (np.nan, True), (500.0, False), (900.0, False)], (450.0, False)),
        ([(700.0, False)], (700.0, False)),
    ],
)
def test_combine_repeats_rule(repeats, expected) -> None:
    copies = pd.Series([c for c, _ in repeats])
    blq = pd.Series([b for _, b in repeats])
    value, is_blq = combine_repeats(copies, blq)
    assert is_blq == expected[1]
    assert (math.isnan(value) and math.isnan(expected[0])) or value == expected[0]


def test_qpcr_all_blq_failed_curve_and_unknown_subject() -> None:
    transgene = _transgene(
        [
            {"sample": "S01_D14", "blq": True},
            {"sample": "S01_D21", "day": 21.0, "blq": pd.NA},  # failed curve: no result
            {"sample": "S09_D14", "subject_id": "S09", "blq": False, "copies_per_ug": 5.0},
            {"sample": "odd", "subject_id": "", "day": np.nan, "blq": False},
        ]
    )
    table = build_concentrations(None, transgene, SUBJECTS)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["subject_id"], row["day"], row["blq"]) == ("S01", 14.0, True)
    assert np.isnan(row["value"]) and row["lloq"] == 100.0


def test_output_validates_and_is_sorted() -> None:
    car_t = pd.concat(
        [_car_t(day=14.0, file="flow/b.fcs"), _car_t(day=-7.0, file="flow/a.fcs")],
        ignore_index=True,
    )
    table = build_concentrations(car_t, None, SUBJECTS)
    validate_concentrations(table)
    first = table[table["analyte"] == "car_per_ul"]
    assert list(first["day"]) == [-7.0, 14.0]


def test_validation_names_the_row() -> None:
    table = pd.DataFrame(
        {"subject_id": ["S01", "S01"], "analyte": ["a", "a"], "day": ["1", "x"],
         "value": [1, 2], "blq": ["false", "false"]}
    )  # fmt: skip
    with pytest.raises(InputError, match="row 3 .*day must be a number"):
        validate_concentrations(table)
