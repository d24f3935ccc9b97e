"""qPCR readers against real instrument exports and hand-made edge cases.

The real exports are those of ``data/qpcr`` in tests/data/shared (one or more per format;
tests/data/README.md) and, for the whole-corpus test, in ../shared when present.

Each real file is read a second time here by the simplest independent means (csv,
openpyxl, xlrd, a regex over the RDML XML) and every well's Cq must match; a few wells
are also checked against values copied by hand from the files.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import xlrd
from conftest import CORPORA, TESTS_DATA, corpus_path, reference_path, shared_path

from ckpk.errors import InputError
from ckpk.qpcr import (
    WELL_COLUMNS,
    WELL_EXTRA_COLUMNS,
    WELL_SORT_BY,
    normalise_task,
    read_plate,
    read_plates,
)
from ckpk.tables import read_tsv, write_tsv

DATA = Path(__file__).parent / "data" / "qpcr"
NO_CQ = {"", "undetermined", "nan"}

pytestmark = pytest.mark.filterwarnings("ignore:Workbook contains no default style")


def qpcr(*parts: str) -> Path:
    return reference_path("data", "qpcr", *parts)


def raw_float(value: object) -> float:
    """Independent reading of a raw Cq cell: no-Cq words become NaN."""
    if value is None or str(value).strip().casefold() in NO_CQ:
        return math.nan
    return float(str(value).replace(",", ""))


def same(a: float, b: float, rel: float = 1e-12) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel)


def cq_of(wells, well: str, target: str | None = None) -> float:
    rows = wells[wells["well"] == well]
    if target is not None:
        rows = rows[rows["target"] == target]
    assert len(rows) == 1, (well, target, rows)
    return float(rows["cq"].iloc[0])


def assert_matches(wells, raw: dict[tuple[str, str], float]) -> None:
    """Every raw (well, target) → Cq equals ours and no well is added or lost."""
    ours = {(w, t): c for w, t, c in zip(wells["well"], wells["target"], wells["cq"], strict=True)}
    assert ours.keys() == raw.keys()
    bad = [k for k in raw if not same(ours[k], raw[k])]
    assert not bad, bad[:5]


def assert_wells_table(wells) -> None:
    assert list(wells.columns[: len(WELL_COLUMNS)]) == WELL_COLUMNS
    assert set(wells["task"]) <= {"standard", "unknown", "ntc"}
    assert wells["omit"].dtype == bool
    assert not (wells["cq"] <= 0).any()  # "not amplified" is NaN, never 0
    assert wells["well_index"].is_monotonic_increasing


# --------------------------------------------------------------------------- QuantStudio


def results_block(path: Path) -> list[dict]:
    """Rows of the [Results] block of an Applied Biosystems text export (csv module)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("[Results]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    return list(csv.DictReader(lines[start:end], delimiter="\t"))


def test_quantstudio_example04_txt():
    path = qpcr("quantstudio", "appbio_quantstudio_example04.txt")
    wells = read_plate(path)
    raw = results_block(path)
    assert len(raw) == 95 and len(wells) == 95  # well 95 (H11) absent from [Results]
    assert "H11" not in set(wells["well"])
    assert_matches(wells, {(r["Well Position"], r["Target Name"]): raw_float(r["CT"]) for r in raw})
    assert_wells_table(wells)
    assert wells.attrs["instrument"] == "QuantStudio(TM) 7 Flex System"
    # Spot checks copied from the file.
    assert cq_of(wells, "A1") == 27.102
    assert math.isnan(cq_of(wells, "D1"))  # Undetermined NTC
    d5 = wells[wells["well"] == "D5"].iloc[0]
    assert (d5["task"], d5["cq"], d5["quantity"]) == ("standard", 29.331, 1250.0)
    e9 = wells[wells["well"] == "E9"].iloc[0]
    assert (e9["cq"], e9["quantity"]) == (25.378, 20000.0)  # "20,000.000"
    assert cq_of(wells, "H12") == 26.217
    assert wells["task"].value_counts().to_dict() == {"unknown": 71, "standard": 20, "ntc": 4}
    # Unknowns carry the instrument's estimate aside, never as a standard quantity.
    a1 = wells[wells["well"] == "A1"].iloc[0]
    assert math.isnan(a1["quantity"]) and a1["instrument_quantity"] == 5720.562


def test_quantstudio_results_only_txt():
    path = qpcr("quantstudio", "example_quantsudio_results_only.txt")
    wells = read_plate(path)
    raw = results_block(path)
    assert len(wells) == len(raw) == 24
    assert_matches(wells, {(r["Well Position"], r["Target Name"]): raw_float(r["CT"]) for r in raw})
    assert cq_of(wells, "A1") == 16.484
    a4 = wells[wells["well"] == "A4"].iloc[0]
    assert (a4["sample"], a4["cq"], a4["task"]) == ("5000018696625", 25.711, "unknown")
    assert cq_of(wells, "B12") == 26.592
    assert sorted(wells["quantity"].dropna().unique()) == [1e7, 1e8]


def test_quantstudio_example08_xlsx_crt_from_row_43():
    path = qpcr("quantstudio", "appbio_quantstudio_example08.xlsx")
    wells = read_plate(path)
    sheet = openpyxl.load_workbook(path, data_only=True)["Results"]
    header = [c.value for c in sheet[43]]  # README: the table starts at row 43
    crt = header.index("CRT")
    raw = {}
    for row in sheet.iter_rows(min_row=44, values_only=True):
        if not row[1]:
            break
        raw[(row[1], row[header.index("Target Name")])] = raw_float(row[crt])
    assert len(raw) == 36 and len(wells) == 36  # 18 duplex wells × 2 targets
    assert_matches(wells, raw)
    assert cq_of(wells, "A1", "18S") == 11.32002067565918
    assert cq_of(wells, "A1", "TJP-1 Rhesus") == 26.776044845581055
    assert cq_of(wells, "C6", "ANPEP-Human") == 31.152690887451172
    assert set(wells["reporter"]) == {"VIC", "FAM"}
    assert_wells_table(wells)


def test_design_and_analysis_xlsx_header_row_25():
    path = qpcr(
        "quantstudio", "appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx"
    )
    wells = read_plate(path)
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    results = list(book["Results"].iter_rows(values_only=True))
    header = list(results[24])  # README: header row 25
    raw = {
        (r[header.index("Well Position")], r[header.index("Target")]): raw_float(
            r[header.index("Cq")]
        )
        for r in results[25:]
        if r[1]
    }
    assert len(raw) == 384 and len(wells) == 384
    assert_matches(wells, raw)
    curve_sheet = list(book["Standard Curve Result"].iter_rows(values_only=True))
    q_header = list(curve_sheet[24])
    known = {
        r[q_header.index("Well Position")]: r[q_header.index("Quantity")]
        for r in curve_sheet[25:]
        if r[q_header.index("Task")] == "STANDARD"
    }
    standards = wells[wells["task"] == "standard"]
    assert len(standards) == len(known) == 80
    assert all(q == known[w] for w, q in zip(standards["well"], standards["quantity"], strict=True))
    assert math.isnan(cq_of(wells, "A1"))  # UNDETERMINED NTC
    assert cq_of(wells, "A2") == 29.84621547854897
    assert cq_of(wells, "P24") == 26.77282642418676
    assert wells["task"].value_counts().to_dict() == {"unknown": 288, "standard": 80, "ntc": 16}
    assert_wells_table(wells)


@pytest.mark.shared
def test_design_and_analysis_copy_keeps_every_cell_the_reader_uses():
    """tests/data holds this export without its per-cycle sheets (tests/data/README.md,
    tests/data/tools/trim_xlsx.py): every other sheet is cell for cell the original's, and
    both give the same wells."""
    name = "appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx"
    copy = corpus_path(TESTS_DATA, "data", "qpcr", "quantstudio", name)
    original = shared_path("data", "qpcr", "quantstudio", name)
    before = openpyxl.load_workbook(original, read_only=True, data_only=True)
    after = openpyxl.load_workbook(copy, read_only=True, data_only=True)
    assert after.sheetnames == ["Results", "Replicate Group Result", "Standard Curve Result"]
    dropped = set(before.sheetnames) - set(after.sheetnames)
    assert dropped == {"Amplification Data", "Multicomponent", "Raw Data"}
    for sheet in after.sheetnames:
        rows = list(after[sheet].iter_rows(values_only=True))
        assert rows == list(before[sheet].iter_rows(values_only=True)), sheet
    assert read_plate(copy).equals(read_plate(original))


# --------------------------------------------------------------------------- StepOne / 7500


def test_stepone_xls_cyrillic_ct_and_trailer():
    path = qpcr("stepone_7500", "MJA_March15_2021_data.xls")
    wells = read_plate(path)
    sheet = xlrd.open_workbook(path).sheet_by_name("Results")
    header = sheet.row_values(7)
    ct = header.index("C\u0442")  # Cyrillic small te
    raw = {}
    for r in range(8, sheet.nrows):
        values = sheet.row_values(r)
        if not values[0]:
            break  # blank row, then "Analysis Type" ... trailer rows
        raw[(values[0], values[header.index("Target Name")])] = raw_float(values[ct])
    assert len(raw) == 85 and len(wells) == 85
    assert_matches(wells, raw)
    assert cq_of(wells, "A1") == 23.56201934814453
    assert math.isnan(cq_of(wells, "C6"))  # Undetermined
    b5 = wells[wells["well"] == "B5"].iloc[0]
    assert (b5["task"], b5["cq"]) == ("ntc", 33.54644775390625)  # amplified NTC
    assert not wells["sample"].isin(["Analysis Type", "Reference Sample"]).any()
    assert_wells_table(wells)


def test_7500_sample_setup_only_is_rejected_with_reason():
    path = qpcr("stepone_7500", "7500_std.xls")
    with pytest.raises(InputError) as error:
        read_plate(path)
    message = str(error.value)
    assert message.startswith("7500_std.xls:")
    assert "Sample Setup" in message and "no Results" in message


# --------------------------------------------------------------------------- Bio-Rad CFX


def test_biorad_cfx_csv():
    path = qpcr("biorad_cfx", "example01.csv")
    wells = read_plate(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        raw_rows = list(csv.DictReader(handle))
    raw = {(r["Well"], r["Fluor"]): raw_float(r["Cq"]) for r in raw_rows}
    assert len(raw) == 48 and len(wells) == 48
    # Target is empty in this export: the dye names the assay.
    assert_matches(wells, raw)
    assert cq_of(wells, "A01", "FAM") == 21.1877528266099
    assert cq_of(wells, "D06", "VIC") == 20.9102822371808
    assert set(wells["task"]) == {"unknown"}
    assert wells.loc[wells["well"] == "A01", "sample"].iloc[0] == "M3905 R Ctx"
    assert_wells_table(wells)


# --------------------------------------------------------------------------- LightCycler 480

LC480 = {
    "Edward_qPCR_Nrd1_calibration_2019-02-02_Cq.txt": (384, 105, {"A1": 22.78, "P23": 33.71}),
    "Edward_qPCR_TxnInhibitors_HS_2018-06-15_plate1_Cq.txt": (384, 61, {"P24": 32.92}),
    "Stuart_dAgr_glyS_spoVG_5S_individualWells_Cq.txt": (96, 6, {"A1": 13.98, "A3": 13.95}),
}


@pytest.mark.parametrize("name", sorted(LC480))
def test_lightcycler480_txt(name):
    path = qpcr("lightcycler480", name)
    n_wells, n_empty, spots = LC480[name]
    wells = read_plate(path, target="Nrd1")
    lines = path.read_bytes().decode("ascii").split("\r\n")  # CRLF
    assert lines[0].startswith("Experiment:")
    raw = {
        (r["Pos"], "Nrd1"): raw_float(r["Cp"]) for r in csv.DictReader(lines[1:], delimiter="\t")
    }
    assert len(raw) == len(wells) == n_wells
    assert_matches(wells, raw)
    assert wells["cq"].isna().sum() == n_empty  # empty Cp = not amplified
    for well, cq in spots.items():
        assert cq_of(wells, well) == cq
    assert set(wells["target"]) == {"Nrd1"}  # no target column: the caller's
    assert_wells_table(wells)


def test_lightcycler480_without_target_uses_filter():
    wells = read_plate(qpcr("lightcycler480", "Stuart_dAgr_glyS_spoVG_5S_individualWells_Cq.txt"))
    assert set(wells["target"]) == {"SYBR Green I / HRM Dye (483-533)"}


# --------------------------------------------------------------------------- RDML


def rdml_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        name = "rdml_data.xml" if "rdml_data.xml" in names else names[0]
        return archive.read(name).decode("utf-8")


REACT_RE = re.compile(r'<react id="([^"]+)">(.*?)</react>', re.S)
DATA_RE = re.compile(r'<data>\s*<tar id="([^"]+)"\s*/>(.*?)</data>', re.S)
CQ_RE = re.compile(r"<cq>([^<]*)</cq>")


def raw_rdml(xml: str) -> list[tuple[str, str, float]]:
    out = []
    for react_id, content in REACT_RE.findall(xml):
        for target, data in DATA_RE.findall(content):
            cq = CQ_RE.search(data)
            out.append((react_id, target, float(cq.group(1)) if cq else math.nan))
    return out


def test_rdml_stepone_cq_40_is_undetermined():
    path = qpcr("rdml", "stepone_std.rdml")
    wells = read_plate(path)
    raw = raw_rdml(rdml_xml(path))
    assert len(raw) == len(wells) == 24
    max_cycle = max(float(c) for c in re.findall(r"<cyc>([^<]+)</cyc>", rdml_xml(path)))
    assert max_cycle == 40.0
    # Rule: a Cq at or above the run's cycle count is StepOne's "undetermined" code.
    expected = {(w, t): (math.nan if cq >= max_cycle else cq) for w, t, cq in raw}
    assert_matches(wells, expected)
    ntc = wells[wells["task"] == "ntc"]
    assert len(ntc) == 3 and ntc["cq"].isna().all()  # the three 40.0 NTCs
    assert cq_of(wells, "A4") == 28.96287
    assert sorted(wells["quantity"].dropna().unique()) == [625.0, 1250.0, 2500.0, 5000.0, 10000.0]


def test_rdml_biorad_zip_with_spanning_marker():
    path = qpcr("rdml", "BioRad_qPCR_melt.rdml")
    wells = read_plate(path)
    xml = rdml_xml(path)
    raw = raw_rdml(xml)
    assert len(raw) == len(wells) == 60  # 2 runs (FAM, Cy5)
    # Numbered reacts on an 8 × 12 plate: 1 → A1, 46 → D10.
    a1 = wells[(wells["well"] == "A1") & (wells["target"] == "EvaGreen")].iloc[0]
    assert a1["cq"] == 27.7514537682101 and a1["sample"] == "Alm12"
    d10 = wells[(wells["well"] == "D10") & (wells["target"] == "EvaGreen")].iloc[0]
    assert d10["cq"] == 39.3137019214124 and d10["task"] == "ntc"  # H2O, 41 cycles run
    a8 = wells[(wells["well"] == "A8") & (wells["target"] == "EvaGreen")].iloc[0]
    assert math.isnan(a8["cq"])  # <cq> absent
    ours = sorted(wells["cq"].fillna(-1).tolist())
    assert ours == sorted(-1 if math.isnan(c) else c for _, _, c in raw)


def test_rdml_lc96_roche_quirks():
    path = qpcr("rdml", "lc96_bACTXY.rdml")
    wells = read_plate(path)
    raw = raw_rdml(rdml_xml(path))
    assert len(raw) == len(wells) == 384  # 96 reacts × 4 dyes
    assert sum(cq == 100 for _, _, cq in raw) > 0
    assert not (wells["cq"] >= 50).any()  # Cq 100 on a 50-cycle run is no Cq
    used = wells[~wells["omit"]]  # Roche 'ntp' = unassigned wells, omitted
    assert set(used["target"]) == {"bACT", "X", "Y", "IPC"}
    d3 = used[(used["well"] == "D3") & (used["target"] == "bACT")].iloc[0]
    assert (d3["sample"], d3["task"], d3["cq"]) == ("Sample 39", "standard", 22.15)


# --------------------------------------------------------------------------- every file


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_export_of_the_corpus_parses_or_is_rejected(corpus):
    root = corpus_path(corpus, "data", "qpcr")
    files = sorted(p for p in root.rglob("*") if p.is_file() and "LICENSE" not in p.name)
    wells, rejected = read_plates(files, target="assay")
    assert [Path(f).name for f, _ in rejected] == ["7500_std.xls"]
    assert wells["plate"].nunique() == len(files) - 1 == 12


# --------------------------------------------------------------------------- hand-made edge cases


def test_semicolon_decimal_comma_and_omit():
    wells = read_plate(DATA / "quantstudio_semicolon_decimal_comma.csv")
    assert len(wells) == 18
    assert cq_of(wells, "A1") == 34.70 and cq_of(wells, "B1") == 28.04
    standards = wells[wells["task"] == "standard"]
    # decimal comma, points as thousands separators: "10,000" = 10, "1.000,000" = 1000
    assert sorted(standards["quantity"].unique()) == [10.0, 100.0, 1000.0, 10000.0, 100000.0]
    assert wells.loc[wells["well"] == "B3", "omit"].item() is True
    assert wells["omit"].sum() == 1
    assert wells.loc[wells["task"] == "ntc", "cq"].isna().all()


def test_rdml_numbered_reacts_minus_one_excl_and_cycle_count():
    wells = read_plate(DATA / "rdml_v13_numbered.rdml")
    assert list(wells["well"]) == ["A1", "A2", "A3", "B1", "B2", "B3", "H11", "H12"]
    assert math.isnan(cq_of(wells, "B1"))  # <cq>-1</cq>
    assert cq_of(wells, "B2") == 26.38
    assert wells.loc[wells["well"] == "B3", "omit"].item() is True  # <excl>
    assert math.isnan(cq_of(wells, "H12"))  # 45.0 on a 45-cycle programme
    assert math.isnan(cq_of(wells, "H11"))  # no <cq>


def test_lightcycler_include_false_and_standards(tmp_path):
    wells = read_plate(DATA / "lightcycler480_abs_quant.txt", target="CAR")
    assert wells.loc[wells["well"] == "A8", "omit"].item() is True
    assert wells.loc[wells["well"] == "A7", "task"].item() == "ntc"
    assert sorted(wells["quantity"].dropna().unique()) == [1000.0, 10000.0, 100000.0]
    assert set(wells["target"]) == {"CAR"}


def qs_text(rows: list[tuple], delimiter: str = "\t") -> str:
    """A minimal QuantStudio Results export (hand-made)."""
    header = [
        "Well",
        "Well Position",
        "Omit",
        "Sample Name",
        "Target Name",
        "Task",
        "Reporter",
        "CT",
        "Quantity",
    ]
    lines = [
        "* Instrument Type = QuantStudio(TM) 7 Flex System",
        "",
        "[Results]",
        delimiter.join(header),
    ]
    for i, (pos, sample, task, ct, qty) in enumerate(rows, start=1):
        lines.append(delimiter.join([str(i), pos, "false", sample, "CAR", task, "FAM", ct, qty]))
    return "\n".join(lines) + "\n"


ROWS = [
    ("A1", "Std", "STANDARD", "28.040", "1,000.000"),
    ("A2", "Patient µ-01 é", "UNKNOWN", "30.000", ""),
    ("A3", "", "NTC", "Undetermined", ""),
]


def test_cp1252_text_falls_back(tmp_path):
    path = tmp_path / "plate_cp1252.txt"
    path.write_bytes(qs_text(ROWS).encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    wells = read_plate(path)
    assert wells.loc[wells["well"] == "A2", "sample"].item() == "Patient µ-01 é"
    assert wells.loc[wells["well"] == "A1", "quantity"].item() == 1000.0


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "plate_bom.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + qs_text(ROWS, ",")
        .replace("1,000.000", '"1,000.000"')
        .replace("\n", "\r\n")
        .encode("utf-8")
    )
    wells = read_plate(path, plate="P7")
    assert list(wells["well"]) == ["A1", "A2", "A3"]
    assert set(wells["plate"]) == {"P7"}
    assert wells.loc[wells["well"] == "A1", "quantity"].item() == 1000.0
    assert not any("\r" in s or "\ufeff" in s for s in wells["sample"])


def test_stepone_cyrillic_text_export(tmp_path):
    text = (
        "* Instrument Type = steponeplus\r\n\r\n[Results]\r\n"
        "Well\tSample Name\tTarget Name\tTask\tReporter\tC\u0442\tQuantity\r\n"
        "A1\tS1\tCAR\tUNKNOWN\tFAM\t25.5\t\r\n"
        "A2\tNTC\tCAR\tNTC\tFAM\tUndetermined\t\r\n"
        "\r\nAnalysis Type\tSingleplex\r\n"
    )
    path = tmp_path / "stepone.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    wells = read_plate(path)
    assert wells["format"].iloc[0] == "stepone_7500"
    assert list(wells["cq"].fillna(-1)) == [25.5, -1]


def test_content_not_extension_decides(tmp_path):
    source = DATA / "quantstudio_semicolon_decimal_comma.csv"
    disguised = tmp_path / "export.dat"
    disguised.write_bytes(source.read_bytes())
    assert len(read_plate(disguised)) == 18
    rdml_as_xml = tmp_path / "run.xml"
    rdml_as_xml.write_bytes((DATA / "rdml_v13_numbered.rdml").read_bytes())
    zipped = tmp_path / "run.rdml"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("rdml_data.xml", rdml_as_xml.read_bytes())
    assert len(read_plate(rdml_as_xml)) == len(read_plate(zipped)) == 8


def test_cfx_semicolon_decimal_comma_empty_target_mapping(tmp_path):
    text = (
        ";Well;Fluor;Target;Content;Sample;Cq;Starting Quantity (SQ)\n"
        ";A01;FAM;;Std-01;;25,10;10000\n"
        ";A02;FAM;;Unkn-01;S1_D7;27,30;2500,5\n"
        ";A02;VIC;;Unkn-01;S1_D7;22,00;NaN\n"
        ";A03;FAM;;NTC;;NaN;NaN\n"
    )
    path = tmp_path / "cfx.csv"
    path.write_text(text, encoding="utf-8")
    wells = read_plate(path, target={"FAM": "CAR", "VIC": "RPP30"})
    assert list(zip(wells["well"], wells["target"], strict=True)) == [
        ("A01", "CAR"),
        ("A02", "CAR"),
        ("A02", "RPP30"),
        ("A03", "CAR"),
    ]
    assert cq_of(wells, "A01") == 25.10
    assert wells.loc[wells["well"] == "A01", "quantity"].item() == 10000.0
    assert wells.loc[wells["task"] == "unknown", "quantity"].isna().all()
    assert wells.loc[wells["task"] == "ntc", "cq"].isna().all()
    # One name for two dyes would merge two assays: the dyes name them instead.
    assert set(read_plate(path, target="CAR")["target"]) == {"FAM", "VIC"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"hello\tworld\n1\t2\n", "not a recognised qPCR export"),
        (b"\x00\x01\x02\x03binary" * 20, "binary"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Excel 97-2003"),
        (b"<?xml version='1.0'?><rdml><experiment", "cannot be parsed"),
    ],
)
def test_bad_files_raise_input_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / "bad_export.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        read_plate(path)
    assert str(error.value).startswith("bad_export.txt:")
    assert words in str(error.value)


def test_garbage_cq_is_flagged_not_a_missing_value(tmp_path):
    """Text where a Cq belongs is neither "not amplified" nor a reason to lose the plate:
    that well is left out with a flag naming it, the other wells are read."""
    rows = [("A1", "S", "UNKNOWN", "twenty", ""), ("A2", "S", "UNKNOWN", "31.2", "")]
    path = tmp_path / "typo.txt"
    path.write_text(qs_text(rows), encoding="utf-8")
    wells = read_plate(path).set_index("well")
    assert wells.loc["A1", "omit"] and np.isnan(wells.loc["A1", "cq"])
    assert (
        wells.loc["A1", "flag"]
        == "typo.txt: well A1: Cq 'twenty' is neither a number nor a 'not amplified' word"
    )
    assert not wells.loc["A2", "omit"] and wells.loc["A2", "cq"] == 31.2
    assert wells.loc["A2", "flag"] == ""


def test_zip_that_is_not_a_qpcr_export(tmp_path):
    path = tmp_path / "photos.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jpg", b"jpeg")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match="neither an Excel workbook nor RDML"):
        read_plate(path)


def test_read_plates_keeps_going_and_rejects_duplicate_plate_ids(tmp_path):
    good = tmp_path / "a" / "plate1.csv"
    good.parent.mkdir()
    good.write_bytes((DATA / "quantstudio_semicolon_decimal_comma.csv").read_bytes())
    twin = tmp_path / "b" / "plate1.csv"
    twin.parent.mkdir()
    twin.write_bytes(good.read_bytes())
    bad = tmp_path / "notes.txt"
    bad.write_text("nothing here\n")
    wells, rejected = read_plates([good, bad, twin])
    assert len(wells) == 18 and set(wells["plate"]) == {"plate1"}
    reasons = dict(rejected)
    assert "not a recognised qPCR export" in reasons[str(bad)]
    assert "already used" in reasons[str(twin)]


@pytest.mark.parametrize(
    ("word", "task"),
    [
        ("STANDARD", "standard"),
        ("Standard", "standard"),
        ("Std-01", "standard"),
        ("std", "standard"),
        ("UNKNOWN", "unknown"),
        ("Unkn-12", "unknown"),
        ("unkn", "unknown"),
        ("NTC", "ntc"),
        ("NTC-02", "ntc"),
        ("NEGATIVE CONTROL", "ntc"),
        ("Negative", "ntc"),
        ("Neg Ctrl", "ntc"),
        ("nac", "ntc"),
        ("Pos Ctrl", "unknown"),
        ("", "unknown"),
    ],
)
def test_vendor_task_words(word, task):
    assert normalise_task(word) == task


def test_wells_table_writes_the_documented_tsv(tmp_path):
    wells = read_plate(DATA / "quantstudio_semicolon_decimal_comma.csv")
    path = tmp_path / "wells.tsv"
    write_tsv(wells, path, columns=WELL_COLUMNS + WELL_EXTRA_COLUMNS, sort_by=WELL_SORT_BY)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t")[:8] == WELL_COLUMNS
    a11 = lines[11].split("\t")  # NTC, Undetermined
    assert a11[:8] == [
        "quantstudio_semicolon_decimal_comma",
        "A11",
        "",
        "CAR",
        "ntc",
        "",
        "",
        "false",
    ]
    b3 = lines[15].split("\t")
    assert (b3[1], b3[5], b3[7]) == ("B3", "35", "true")
    back = read_tsv(path)
    assert back["cq"].isna().sum() == wells["cq"].isna().sum() == 5
