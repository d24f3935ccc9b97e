"""CAR+ T cells per µL against hand-worked numbers (config/README.md, ``flow/car_t.tsv``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from conftest import PROJECT_DIR

from ckpk.flow import GATE_KEYS, REQUIRED_GATE_KEYS
from ckpk.flow.counts import CAR_T_COLUMNS, DUAL_PLATFORM, SINGLE_PLATFORM, car_t_table
from ckpk.tables import read_tsv, write_tsv

LYMPH = "/root/Lymphocytes"
CD3 = "/root/Lymphocytes/CD3"
CAR = "/root/Lymphocytes/CD3/CAR"
BEADS = "/root/Beads"
B_CELLS = "/root/Lymphocytes/CD19"
GATES = {
    "car_gate": CAR,
    "cd3_gate": CD3,
    "bead_gate": BEADS,
    "lymphocyte_gate": LYMPH,
    "b_cell_gate": B_CELLS,
}


def _counts(
    file: str,
    events: int,
    lymph: int,
    cd3: int,
    car: int,
    beads: int,
    b: int,
    compensation: str = "file",
) -> list[dict]:
    rows = [
        (LYMPH, lymph, "/root", events),
        (CD3, cd3, LYMPH, lymph),
        (CAR, car, CD3, cd3),
        (BEADS, beads, "/root", events),
        (B_CELLS, b, LYMPH, lymph),
    ]
    return [
        {
            "file": file,
            "gate_path": path,
            "gate": path.rsplit("/", 1)[-1],
            "count": count,
            "parent": parent,
            "parent_count": parent_count,
            "events": events,
            "compensation": compensation,
            "notes": "",
        }
        for path, count, parent, parent_count in rows
    ]


def _table(samples: list[dict], counts: list[list[dict]], gates=GATES, lloq=20):
    gate_counts = pd.DataFrame([row for file_rows in counts for row in file_rows])
    return car_t_table(gate_counts, pd.DataFrame(samples), gates, lloq).set_index("file")


def test_single_platform_beads_hand_worked():
    # 150 CAR+ events, 10,000 of 50,000 beads counted, 50 µL blood:
    # 150 / 10,000 x 50,000 / 50 = 15 cells/µL; LLOQ 20 events -> 20 x 0.1 = 2 cells/µL.
    table = _table(
        [
            {
                "file": "a.fcs",
                "subject_id": "S01",
                "day": 14,
                "beads_per_test": 50000,
                "blood_ul": 50,
                "lymphocytes_per_ul": 1500,
            }
        ],
        [_counts("a.fcs", events=60000, lymph=30000, cd3=3000, car=150, beads=10000, b=500)],
    )
    row = table.loc["a.fcs"]
    assert row["count_method"] == SINGLE_PLATFORM
    assert row["car_per_ul"] == pytest.approx(15.0)
    assert row["lloq_per_ul"] == pytest.approx(2.0)
    assert row["b_cells_per_ul"] == pytest.approx(50.0)  # 500 x 0.1
    assert row["car_pct_cd3"] == pytest.approx(5.0)  # 150 / 3000
    assert row["lloq_pct_cd3"] == pytest.approx(100 * 20 / 3000)
    assert not row["blq"]
    assert (row["events"], row["cd3_count"], row["car_count"]) == (60000, 3000, 150)
    assert (row["bead_count"], row["lymphocyte_count"], row["b_cell_count"]) == (10000, 30000, 500)
    assert row["subject_id"] == "S01" and row["day"] == 14
    assert row["compensation"] == "file"


def test_dual_platform_cbc_hand_worked():
    # No bead gate: 40 CAR+ of 8,000 lymphocyte-gate events x 1,200 lymphocytes/µL = 6/µL.
    gates = {"car": CAR, "cd3": CD3, "lymphocytes": LYMPH}
    table = _table(
        [{"file": "b.fcs", "subject_id": "S02", "day": 28, "lymphocytes_per_ul": 1200}],
        [_counts("b.fcs", events=20000, lymph=8000, cd3=4000, car=40, beads=0, b=0)],
        gates=gates,
    )
    row = table.loc["b.fcs"]
    assert row["count_method"] == DUAL_PLATFORM
    assert row["car_per_ul"] == pytest.approx(6.0)
    assert row["lloq_per_ul"] == pytest.approx(20 * 1200 / 8000)  # 3 cells/µL
    assert row["car_pct_cd3"] == pytest.approx(1.0)
    assert pd.isna(row["bead_count"]) and pd.isna(row["b_cells_per_ul"])


def test_empty_bead_gate_falls_back_to_cbc_with_flag():
    table = _table(
        [
            {
                "file": "c.fcs",
                "subject_id": "S03",
                "day": 7,
                "beads_per_test": 50000,
                "blood_ul": 50,
                "lymphocytes_per_ul": 900,
            }
        ],
        [_counts("c.fcs", events=10000, lymph=5000, cd3=2500, car=100, beads=0, b=10)],
    )
    row = table.loc["c.fcs"]
    assert row["count_method"] == DUAL_PLATFORM
    assert row["car_per_ul"] == pytest.approx(100 / 5000 * 900)  # 18
    assert "bead gate has 0 events" in row["flags"]


def test_neither_method_leaves_car_per_ul_empty():
    table = _table(
        [{"file": "d.fcs", "subject_id": "S04", "day": 90}],
        [_counts("d.fcs", events=10000, lymph=5000, cd3=2000, car=50, beads=0, b=0)],
    )
    row = table.loc["d.fcs"]
    assert row["count_method"] == ""
    assert math.isnan(row["car_per_ul"]) and math.isnan(row["lloq_per_ul"])
    assert row["car_pct_cd3"] == pytest.approx(2.5)
    assert "car_per_ul not computed" in row["flags"]


@pytest.mark.parametrize(("car", "blq"), [(19, True), (20, False), (21, False), (0, True)])
def test_blq_at_the_threshold(car, blq):
    # "Fewer CAR events than flow.lloq_events" -> blq; exactly lloq_events is quantifiable.
    table = _table(
        [{"file": "e.fcs", "subject_id": "S05", "day": 180, "lymphocytes_per_ul": 1000}],
        [_counts("e.fcs", events=50000, lymph=10000, cd3=5000, car=car, beads=0, b=0)],
        gates={"car": CAR, "cd3": CD3, "lymphocytes": LYMPH},
        lloq=20,
    )
    row = table.loc["e.fcs"]
    assert bool(row["blq"]) is blq
    # The reading below the LLOQ is kept: a BLQ file's numbers are still reported as read.
    assert row["car_per_ul"] == pytest.approx(car * 1000 / 10000)
    assert row["lloq_per_ul"] == pytest.approx(2.0)


def test_missing_identity_and_zero_cd3_are_flagged(tmp_path):
    table = car_t_table(
        pd.DataFrame(_counts("f.fcs", events=1000, lymph=0, cd3=0, car=0, beads=0, b=0)),
        pd.DataFrame(columns=["file", "subject_id", "day"]),
        GATES,
        20,
    )
    row = table.iloc[0]
    assert "no subject_id/day" in row["flags"]
    assert "CD3 gate has 0 events" in row["flags"]
    assert math.isnan(row["car_pct_cd3"]) and math.isnan(row["lloq_pct_cd3"])
    assert list(table.columns) == CAR_T_COLUMNS

    # Written and read back through ckpk's TSV table functions.
    write_tsv(table, tmp_path / "car_t.tsv", columns=CAR_T_COLUMNS, sort_by=["file"])
    back = read_tsv(tmp_path / "car_t.tsv")
    assert back["blq"].tolist() == [True]
    assert back["car_count"].tolist() == [0]
    assert (tmp_path / "car_t.tsv").read_text().splitlines()[0].split("\t") == CAR_T_COLUMNS


def test_bad_arguments():
    counts = pd.DataFrame(_counts("g.fcs", 10, 5, 5, 1, 0, 0))
    with pytest.raises(ValueError, match="lloq_events"):
        car_t_table(counts, pd.DataFrame(), GATES, -1)
    with pytest.raises(KeyError, match="car gate is required"):
        car_t_table(counts, pd.DataFrame(), {"cd3": CD3}, 20)


def test_gate_keys_are_the_configs_gate_keys():
    # One list of gate keys (ckpk.flow): the workflow's rules import it, so it must name
    # exactly the config's gate keys, in config order, the required ones among them.
    config = yaml.safe_load((PROJECT_DIR / "config" / "config.yaml").read_text())["flow"]
    assert GATE_KEYS == tuple(key for key in config if key.endswith("_gate"))
    assert set(REQUIRED_GATE_KEYS) <= set(GATE_KEYS)
    # Every spelling of a role counts alike: the role, the config key, the key sans "_gate".
    sample = {"file": "a.fcs", "subject_id": "S01", "day": 14, "beads_per_test": 50000}
    for alias in ("beads", "bead_gate", "bead"):
        gates = {"car": CAR, "cd3": CD3, alias: BEADS}
        counts = _counts("a.fcs", events=60000, lymph=30000, cd3=3000, car=150, beads=10000, b=5)
        table = _table([{**sample, "blood_ul": 50}], [counts], gates=gates)
        assert table.loc["a.fcs", "car_per_ul"] == pytest.approx(15.0)
