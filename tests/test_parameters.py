"""The PK parameter registry: the one place a column is declared, ``ckpk parameters``, the
config/README.md tables, and the partial AUC named after its end day (``--end 14`` writes
``auc_0_14``, checked against a hand computation on an analytic profile)."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
import yaml

from ckpk.cli import main
from ckpk.pk import model, nca, summary
from ckpk.pk.kinetics import SteinParameters, stein_auc, stein_curve
from ckpk.pk.parameter_tables import parameter_table
from ckpk.pk.parameters import (
    DEFAULT_PARTIAL_AUC_END,
    MODEL_PARAMETERS,
    NCA_PARAMETERS,
    TABLES,
    model_fit_columns,
    nca_columns,
    partial_auc_column,
    pknca_columns,
)
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
# Codes as PKNCA registers them (add.interval.col(..., pptestcd_cdisc=...)), from SDTM
# controlled terminology PKPARMCD; stated here again so that a slip in the registry shows.
CDISC = {
    "cmax": "CMAX",
    "tmax": "TMAX",
    "clast": "CLST",
    "tlast": "TLST",
    "auc_0_28": "AUCINT",
    "auclast": "AUCLST",
    "aucall": "AUCALL",
    "aucinf_obs": "AUCIFO",
    "lambda_z": "LAMZ",
    "half_life": "LAMZHL",
    "r_squared": "R2",
    "adj_r_squared": "R2ADJ",
    "lambda_z_n_points": "LAMZNPT",
    "lambda_z_time_first": "LAMZLL",
    "lambda_z_time_last": "LAMZUL",
}


# ------------------------------------------------------------------ one declaration


def test_column_lists_derive_from_the_registry():
    assert nca.NCA_COLUMNS == [p.column.replace("{end}", "28") for p in NCA_PARAMETERS]
    assert nca.NCA_COLUMNS == nca_columns(DEFAULT_PARTIAL_AUC_END)
    assert model.MODEL_FIT_COLUMNS == model_fit_columns(DEFAULT_PARTIAL_AUC_END)
    assert list(nca.NCA_COLUMN_DOC) == nca.NCA_COLUMNS
    assert list(model.MODEL_COLUMN_DOC) == model.MODEL_FIT_COLUMNS
    assert [name for name, _, _ in summary.SUMMARY_PARAMETERS][2] == "auc_0_28"
    for columns in (nca.NCA_COLUMNS, model.MODEL_FIT_COLUMNS):
        assert len(set(columns)) == len(columns)


def _literal_names(node: ast.AST) -> list[str]:
    """The text constants of a list/tuple/set literal, or the keys of a dict literal whose
    values are text too (a column-doc table)."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = node.elts
    elif isinstance(node, ast.Dict) and all(
        isinstance(v, ast.Constant) and isinstance(v.value, str) for v in node.values
    ):
        items = [k for k in node.keys if k is not None] + list(node.values)
    else:
        return []
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def test_no_other_module_declares_a_column_list():
    """A literal naming six or more registry columns outside the registry would be a
    second declaration (the old NCA_COLUMNS, NCA_COLUMN_DOC, MODEL_FIT_COLUMNS ...).
    Short lists naming what a rule empties (nca.ALL_BLQ_EMPTY) are references."""
    registry = set(nca_columns()) | set(model_fit_columns())
    files = [
        *(PROJECT / "src/ckpk/pk").glob("*.py"),
        *(PROJECT / "src/ckpk/report").glob("*.py"),
        *(PROJECT / "workflow/scripts").glob("pk_*.py"),
        PROJECT / "src/ckpk/cli.py",
    ]
    found = []
    for path in files:
        if path.name == "parameters.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = [n for n in _literal_names(node) if n in registry]
            if len(named) >= 6:
                found.append(f"{path.name}:{node.lineno}: {named}")
    assert not found, "\n".join(found)


def test_flags_name_registry_columns():
    for group in (nca.ALL_BLQ_EMPTY, nca.AUC_EMPTY, nca.HALF_LIFE_EMPTY):
        assert set(group) <= set(nca.NCA_COLUMNS), group


def test_cdisc_and_pknca_names():
    codes = {p.name(): p.cdisc for p in NCA_PARAMETERS if p.cdisc}
    assert codes == CDISC
    # Every PKNCA-computed column has its CDISC code and the reverse.
    assert set(pknca_columns().values()) == set(CDISC)
    assert pknca_columns()["aucint.last"] == "auc_0_28"
    assert {p.cdisc for p in MODEL_PARAMETERS} == {""}  # model estimates have no PP code


def test_config_default_is_the_registry_default():
    config = yaml.safe_load((PROJECT / "config/config.yaml").read_text(encoding="utf-8"))
    assert float(config["nca"]["partial_auc_end"]) == DEFAULT_PARTIAL_AUC_END


@pytest.mark.parametrize(
    ("end", "name"), [(28, "auc_0_28"), (14.0, "auc_0_14"), (7.5, "auc_0_7.5")]
)
def test_partial_auc_column_is_named_after_the_end_day(end, name):
    assert partial_auc_column(end) == name
    assert name in nca_columns(end) and f"{name}_se" in model_fit_columns(end)


# --------------------------------------------------------------------- ckpk parameters


def _profile(tmp_path: Path, rows: list[tuple[float, str, bool]]) -> Path:
    """A concentrations TSV of one subject (value empty on BLQ rows)."""
    header = "subject_id\tanalyte\tday\tvalue\tunit\tblq\tlloq\tsource"
    lines = [header] + [
        f"S1\tcar_copies_per_ug\t{day:g}\t{value}\tcopies/ug gDNA\t{str(blq).lower()}\t10\tt"
        for day, value, blq in rows
    ]
    path = tmp_path / "concentrations.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Linear rise 0 → 100 over 7 days, then a mono-exponential fall halving every 7 days, with
# day 14 not sampled: the log trapezoid is exact for the fall and the linear one for the
# rise, so AUC(0-14) = 7·100/2 + ∫ 100·2^(−(t−7)/7) dt over [7, 14] = 350 + 350/ln 2.
ANALYTIC = [(0, "", True), (7, "100", False), (21, "25", False), (28, "12.5", False)]


def test_parameters_lists_every_nca_column_with_its_cdisc_code(tmp_path, capsys):
    source = _profile(tmp_path, ANALYTIC)
    assert main(["nca", str(source), "-o", str(tmp_path / "nca.tsv")]) == 0
    header = (tmp_path / "nca.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    capsys.readouterr()
    assert main(["parameters", "--table", "nca"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines[2:] if line[:1].strip()]
    assert listed == header == nca.NCA_COLUMNS
    for parameter in NCA_PARAMETERS:
        line = next(x for x in lines if x.split()[:1] == [parameter.name()])
        assert line.split()[1] == (parameter.cdisc or "-"), line
        assert line.split()[2] == (parameter.pknca or "-"), line


def test_parameters_prints_both_tables_and_follows_end(capsys):
    assert main(["parameters", "--end", "14"]) == 0
    out = capsys.readouterr().out
    assert "pk/nca.tsv" in out and "pk/model_fits.tsv" in out
    assert "auc_0_14 " in out and "auc_0_14_se " in out and "auc_0_28" not in out
    assert re.search(r"PPENINT\s+P14D", out)  # the description may wrap between them


@pytest.mark.parametrize("table", list(TABLES))
def test_config_readme_tables_are_the_registry(table: str):
    """config/README.md shows ``ckpk parameters --table T --markdown`` verbatim."""
    readme = (PROJECT / "config/README.md").read_text(encoding="utf-8").splitlines()
    start = readme.index(f"### `{TABLES[table][0]}`")
    first = next(i for i in range(start, len(readme)) if readme[i].startswith("| column"))
    last = next(i for i in range(first, len(readme)) if not readme[i].startswith("|"))
    assert "\n".join(readme[first:last]) == parameter_table(table, markdown=True), (
        "regenerate with: python docs/tools/update_parameter_tables.py"
    )


# ----------------------------------------------------------------- --end names the AUC


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("lin-up/log-down", 350 + 350 / math.log(2)),
        # Linear: C(14) = 100 + (14 − 7)/(21 − 7)·(25 − 100) = 62.5; 350 + 7·(100 + 62.5)/2.
        ("linear", 350 + 7 * (100 + 62.5) / 2),
    ],
)
def test_nca_end_14_writes_auc_0_14(tmp_path, method, expected):
    source = _profile(tmp_path, ANALYTIC)
    out = tmp_path / "nca.tsv"
    assert main(["nca", str(source), "-o", str(out), "--end", "14", "--method", method]) == 0
    header = out.read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert header == nca_columns(14) and "auc_0_28" not in header
    row = read_tsv(out).iloc[0]
    assert row["auc_0_14"] == pytest.approx(expected, rel=1e-9)
    assert "auc_0_14: day 14 not sampled, C(14) interpolated" in row["flags"]
    assert "auc_0_28" not in row["flags"]


def test_nca_default_end_still_writes_auc_0_28(tmp_path):
    source = _profile(tmp_path, ANALYTIC)
    out = tmp_path / "nca.tsv"
    assert main(["nca", str(source), "-o", str(out)]) == 0
    row = read_tsv(out).iloc[0]
    # Day 28 sampled: 350 + exact log areas 7→21 and 21→28 of the halving curve.
    expected = 350 + (100 - 25) * 7 / math.log(2) + (25 - 12.5) * 7 / math.log(2)
    assert row["auc_0_28"] == pytest.approx(expected, rel=1e-9)


def test_fit_end_14_writes_the_model_auc_over_14_days(tmp_path):
    # Sampled long enough for the two-phase model to win by AICc (with 10 samples its
    # 7 parameters cost 56 AICc points and the one-phase model would be chosen).
    days = [0, 1, 4, 7, 10, 14, 21, 28, 42, 56, 90, 120, 180]
    truth = SteinParameters(cmax=20000.0, tmax=9.0, foldx=2000.0, alpha=0.15, beta=0.01, fb=0.02)
    levels = stein_curve(days, truth)
    source = _profile(tmp_path, [(d, f"{c:.6g}", False) for d, c in zip(days, levels, strict=True)])
    out = tmp_path / "fits.tsv"
    assert main(["fit", str(source), "-o", str(out), "--end", "14"]) == 0
    header = out.read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert header == model_fit_columns(14)
    row = read_tsv(out).iloc[0]
    fitted = model.parameters_from_row(row)
    assert fitted is not None
    assert row["auc_0_14"] == pytest.approx(stein_auc(fitted, 0.0, 14.0), rel=1e-9)
    assert row["auc_0_14"] == pytest.approx(stein_auc(truth, 0.0, 14.0), rel=1e-3)
