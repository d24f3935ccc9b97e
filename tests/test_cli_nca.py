"""``ckpk nca`` end to end: a TSV built from the PKNCA reference profiles, compared with
PKNCA 0.12.1's own results; malformed input; ``--help``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import reference_path

from ckpk.cli import main
from ckpk.pk.nca import NCA_COLUMNS
from ckpk.pk.parameters import NCA_PARAMETERS
from ckpk.tables import read_tsv

LLOQ = 50.0
ANALYTE = "car_copies_per_ug"
UNIT = "copies/ug gDNA"
# The three spellings of a BLQ row's value (config/README.md, pk/concentrations.tsv): empty,
# 0, a reading below LLOQ; the blq column decides, whatever the value holds.
BLQ_VALUES = {"empty": "", "zero": "0", "reading": "12.5"}
# PKNCA parameter → our column, from the registry; the reference names an interval
# parameter after its interval (aucint.last_0_28).
PARAMETERS = {
    f"{p.pknca}_0_28" if p.interval else p.pknca: p.name() for p in NCA_PARAMETERS if p.pknca
}
HEADER = ["subject_id", "analyte", "day", "value", "unit", "blq", "lloq", "source"]


def _write_input(path: Path, blq_value: str) -> None:
    profiles = pd.read_csv(
        reference_path("reference", "pk", "profiles.csv"), dtype=str, keep_default_na=False
    )
    lines = ["\t".join(HEADER)]
    for subject, day, conc in profiles[["subject", "time", "conc"]].itertuples(index=False):
        blq = conc != "" and float(conc) == 0
        value = blq_value if blq else conc  # a missing sample stays empty, blq false
        row = [subject, ANALYTE, day, value, UNIT, "true" if blq else "false", f"{LLOQ:g}", "ref"]
        lines.append("\t".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _same(expected: float, got: float) -> bool:
    if pd.isna(expected) or pd.isna(got):
        return bool(pd.isna(expected) and pd.isna(got))
    return math.isclose(float(got), float(expected), rel_tol=1e-6)


@pytest.mark.parametrize("blq_style", list(BLQ_VALUES))
@pytest.mark.parametrize(
    ("options", "pknca_method"),
    [([], "lin up/log down"), (["--method", "linear", "--end", "28"], "linear")],
)
def test_cli_output_matches_pknca(tmp_path, blq_style, options, pknca_method):
    source = tmp_path / "concentrations.tsv"
    out = tmp_path / "nca.tsv"
    _write_input(source, BLQ_VALUES[blq_style])
    assert main(["nca", str(source), "-o", str(out), *options]) == 0

    header = out.read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert header[: len(NCA_COLUMNS)] == NCA_COLUMNS
    result = read_tsv(out).set_index("subject_id")
    reference = pd.read_csv(reference_path("reference", "pk", "profiles_pknca.csv"))
    reference = reference[reference["method"] == pknca_method].set_index("subject")
    assert sorted(result.index) == sorted(reference.index)
    assert (result["unit"] == UNIT).all() and (result["analyte"] == ANALYTE).all()
    mismatches = [
        f"{subject} {ref_name}: PKNCA {reference.at[subject, ref_name]}, "
        f"ckpk {result.at[subject, ours]}"
        for subject in reference.index
        for ref_name, ours in PARAMETERS.items()
        if not _same(reference.at[subject, ref_name], result.at[subject, ours])
    ]
    assert not mismatches, "\n".join(mismatches)
    # BLQ counted, missing samples not: S2 has 3 BLQ of 9 non-missing samples.
    assert result.at["S2_blq_mid_missing28", "n_obs"] == 9
    assert result.at["S2_blq_mid_missing28", "n_blq"] == 3


def test_the_three_blq_spellings_give_identical_bytes(tmp_path):
    outputs = []
    for style, value in BLQ_VALUES.items():
        source, out = tmp_path / f"{style}.tsv", tmp_path / f"{style}_nca.tsv"
        _write_input(source, value)
        assert main(["nca", str(source), "-o", str(out)]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def _small_table(tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD_ROWS = [
    ["S01", ANALYTE, "0", "", UNIT, "true", "50", "q"],
    ["S01", ANALYTE, "7", "1000", UNIT, "false", "50", "q"],
    ["S01", ANALYTE, "14", "300", UNIT, "false", "50", "q"],
]


def test_missing_column_exits_2_naming_it(tmp_path, capsys):
    header = [h for h in HEADER if h != "blq"]
    rows = [[v for h, v in zip(HEADER, r, strict=True) if h != "blq"] for r in GOOD_ROWS]
    source = _small_table(tmp_path, rows, header)
    assert main(["nca", str(source), "-o", str(tmp_path / "out.tsv")]) == 2
    err = capsys.readouterr().err
    assert "missing column" in err and "blq" in err and str(source) in err
    assert not (tmp_path / "out.tsv").exists()


def test_non_numeric_day_exits_2_naming_the_row(tmp_path, capsys):
    rows = [*GOOD_ROWS[:2], ["S01", ANALYTE, "D14", "300", UNIT, "false", "50", "q"]]
    source = _small_table(tmp_path, rows)
    assert main(["nca", str(source), "-o", str(tmp_path / "out.tsv")]) == 2
    err = capsys.readouterr().err
    assert "row 4" in err and "day" in err and "'D14'" in err


def test_duplicate_subject_analyte_day_exits_2_naming_the_row(tmp_path, capsys):
    rows = [*GOOD_ROWS, ["S01", ANALYTE, "7", "990", UNIT, "false", "50", "q"]]
    source = _small_table(tmp_path, rows)
    assert main(["nca", str(source), "-o", str(tmp_path / "out.tsv")]) == 2
    err = capsys.readouterr().err
    assert "row 5" in err and "duplicate" in err and "S01" in err


def test_help_lists_every_column(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["nca", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for column in NCA_COLUMNS:
        assert f"  {column} " in out, column
