"""FCS reading: real instrument files, damaged files, privacy of free-text keywords."""

from __future__ import annotations

import os
from pathlib import Path

import flowio
import numpy as np
import pytest
from conftest import CORPORA, SHARED, corpus_path, shared_path

from ckpk.errors import InputError
from ckpk.flow.fcs import check_channels, read_fcs
from ckpk.flow.privacy import TECHNICAL_KEYWORDS, technical_keywords
from ckpk.flow.strategy import load_strategy

DATA = Path(__file__).parent / "data" / "flow"

# Files under data/fcs that are not FCS files at all (licences, GatingML, truth tables,
# workspaces, matrices): each must be refused with a reason.
NOT_FCS_SUFFIXES = {".xml", ".txt", ".csv", ".wsp", ".npy", ""}
# Instrument files that must read, odd suffixes included: all of them in ../shared; the
# tests/data copy holds the last three.
MUST_READ = (
    "100715.fcs",
    "coulter.lmd",
    "0877408774.B08",
    "060909.001",
    "G11.fcs",
    "data_start_offset_discrepancy_example.fcs",
    "test_comp_example.fcs",
    "data1.fcs",
    "test_data_diamond_01.fcs",
    "data_set_simple_line_100.fcs",
)


def _all_files(corpus: str) -> list[Path]:
    root = corpus_path(corpus, "data", "fcs")
    return sorted(Path(d) / f for d, _dirs, files in os.walk(root) for f in files)


def _write_fcs(path: Path, events: np.ndarray, names: list[str], **keywords: str) -> Path:
    with path.open("wb") as handle:
        flowio.create_fcs(handle, events.flatten().tolist(), names, metadata_dict=keywords)
    return path


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_file_of_the_corpus_reads_or_gives_input_error(corpus):
    outcomes = {}
    for path in _all_files(corpus):
        try:
            sample, notes = read_fcs(path)
        except InputError as error:
            message = str(error)
            assert message.startswith(f"{path.name}: ")
            assert len(message) > len(path.name) + 10
            outcomes[path.name] = ("rejected", message)
        else:
            assert sample.event_count == sample.get_events(source="raw").shape[0]
            assert len(sample.pnn_labels) == sample.get_events(source="raw").shape[1]
            outcomes[path.name] = ("ok", notes)
    rejected = {name for name, (status, _) in outcomes.items() if status == "rejected"}
    # Every instrument file is readable; everything else is refused as "not an FCS file".
    assert all(Path(name).suffix in NOT_FCS_SUFFIXES or "LICENSE" in name for name in rejected)
    assert all("not an FCS file" in outcomes[name][1] for name in rejected)
    for name in MUST_READ if corpus == SHARED else MUST_READ[-3:]:
        assert outcomes[name][0] == "ok", outcomes[name]


@pytest.mark.shared
def test_flowio_preprocessed_truth_matches():
    # FlowIO's own truth: preprocessed (gain/log/timestep-scaled) events of a BD file.
    sample, notes = read_fcs(shared_path("data", "fcs", "flowio", "B01 KC-A-W---91-US.fcs"))
    truth = np.load(
        shared_path("data", "fcs", "flowio", "truth", "B01 KC-A-W---91-US_preprocessed_events.npy")
    )
    np.testing.assert_array_equal(sample.get_events(source="raw"), truth)
    assert notes == []


@pytest.mark.shared
@pytest.mark.filterwarnings("ignore:FCS file coulter.lmd reported incorrect data offset")
def test_multi_data_set_file_uses_first_data_set():
    sample, notes = read_fcs(
        shared_path("data", "fcs", "flowkit", "multi_dataset_fcs", "coulter.lmd")
    )
    first = flowio.read_multiple_data_sets(
        str(shared_path("data", "fcs", "flowkit", "multi_dataset_fcs", "coulter.lmd")),
        ignore_offset_error=True,
    )[0]
    assert sample.version == first.version == "2.0"
    assert sample.event_count == first.event_count == 18110
    np.testing.assert_array_equal(sample.get_events(source="raw"), first.as_array())
    assert any("only the first was used" in n for n in notes)


@pytest.mark.shared
@pytest.mark.parametrize(
    "name",
    ["data_start_offset_discrepancy_example.fcs", "data_stop_offset_discrepancy_example.fcs"],
)
def test_header_text_offset_discrepancy_is_accepted_with_note(name):
    sample, notes = read_fcs(shared_path("data", "fcs", "flowkit", "noncompliant", name))
    assert sample.event_count == 2 and len(sample.pnn_labels) == 26
    assert any("HEADER and TEXT disagree" in n for n in notes)


@pytest.mark.shared
def test_off_by_one_data_offset_is_accepted_with_note():
    sample, notes = read_fcs(shared_path("data", "fcs", "flowkit", "test_comp_example.fcs"))
    assert sample.event_count == 10703
    assert any("one byte past the data" in n for n in notes)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["0877408774.B08", "0877408774.E07", "0877408774.F06"])
def test_cellquest_empty_keyword_values_keep_names_on_their_columns(name):
    # CellQuest writes empty $PnS values ("//"); read naively, $P6N is swallowed and every
    # later name shifts onto the wrong data column. The Time channel of a FACSCalibur file
    # is a clock, so it must never decrease: a physical check that names sit on their data.
    sample, notes = read_fcs(shared_path("data", "fcs", "flowcore", name))
    assert sample.pnn_labels == [
        "FSC-H",
        "SSC-H",
        "FL1-H",
        "FL2-H",
        "FL3-H",
        "FL1-A",
        "FL4-H",
        "Time",
    ]
    time = sample.get_channel_events("Time", source="raw")
    assert np.all(np.diff(time) >= 0)
    assert any("empty keyword values" in n for n in notes)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"FCS3.0", "truncated"),
        (b"not an fcs file at all" * 10, "not an FCS file"),
        (b"FCS9.9    " + b" " * 60, "version"),
    ],
)
def test_unusable_files_give_input_error(tmp_path, content, reason):
    path = tmp_path / "S01_D14.fcs"
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as error:
        read_fcs(path)
    assert str(error.value).startswith("S01_D14.fcs: ")


def test_truncated_data_segment_gives_input_error(tmp_path):
    good = _write_fcs(tmp_path / "good.fcs", np.ones((100, 3)), ["FSC-A", "SSC-A", "FL1-A"])
    cut = tmp_path / "cut.fcs"
    cut.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(InputError, match="truncated"):
        read_fcs(cut)
    with pytest.raises(InputError, match="file not found"):
        read_fcs(tmp_path / "absent.fcs")


def test_file_without_events_gives_input_error(tmp_path):
    path = _write_fcs(tmp_path / "none.fcs", np.ones((1, 2)), ["FSC-A", "SSC-A"])
    raw = path.read_bytes().replace(b"/$TOT/1/", b"/$TOT/0/")
    path.write_bytes(raw)
    with pytest.raises(InputError, match="no events"):
        read_fcs(path)


def test_free_text_keywords_never_leave_the_reader(tmp_path):
    secrets = {
        "$SRC": "Jane Doe blood",
        "$CELLS": "PBMC of patient JD-1975",
        "$COM": "called Mrs Doe 555-0100",
        "$OP": "Dr Who",
        "$FIL": "JaneDoe_1975-03-02.fcs",
        "$SMNO": "MRN 00123456",
        "$DATE": "02-MAR-2024",
        "PATIENT ID": "MRN-998877",
        "$CYT": "FACSCanto II",
    }
    events = np.random.default_rng(0).uniform(0, 1000, size=(500, 3))
    path = _write_fcs(tmp_path / "S01_D14.fcs", events, ["FSC-A", "SSC-A", "FL1-A"], **secrets)
    assert b"Jane Doe" in path.read_bytes()  # the file really holds them

    sample, notes = read_fcs(path)
    exposed = " ".join(
        [
            repr(sample),
            str(sample.id),
            str(sample.original_filename),
            str(sample.current_filename),
            str(sample.acquisition_date),
            " ".join(notes),
            repr(sample.get_metadata()),
            sample.channels.to_string(),
        ]
    )
    for key, value in secrets.items():
        if key == "$CYT":
            continue
        assert value not in exposed, key
    assert sample.get_metadata()["cyt"] == "FACSCanto II"  # technical keywords stay
    assert all(k.startswith("p") or k in TECHNICAL_KEYWORDS for k in sample.get_metadata())


def test_whitelist_is_explicit():
    assert TECHNICAL_KEYWORDS == {
        "tot",
        "par",
        "mode",
        "datatype",
        "byteord",
        "nextdata",
        "cyt",
        "timestep",
        "spillover",
        "spill",
        "vol",
    }
    kept = technical_keywords(
        {"p1n": "FSC-A", "p1s": "", "p1v": "400", "src": "x", "p1x": "y", "fil": "z", "vol": "1"}
    )
    assert kept == {"p1n": "FSC-A", "p1s": "", "p1v": "400", "vol": "1"}


@pytest.mark.shared
def test_check_channels_names_the_missing_channel(tmp_path):
    strategy = load_strategy(DATA / "100715_cart.xml")
    sample, _ = read_fcs(shared_path("data", "fcs", "flowkit", "100715.fcs"))
    check_channels(sample, strategy)  # all channels present

    events = np.random.default_rng(1).uniform(0, 1000, size=(50, 4))
    path = _write_fcs(tmp_path / "S02_D7.fcs", events, ["FSC-A", "FSC-H", "SSC-A", "R780-A"])
    other, _ = read_fcs(path)
    with pytest.raises(InputError, match="missing channel") as error:
        check_channels(other, strategy)
    message = str(error.value)
    assert message.startswith("S02_D7.fcs: ")
    for channel in ("V450-A", "V655-A", "V800-A", "G710-A"):
        assert channel in message
