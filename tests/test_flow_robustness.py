"""Every file under data/fcs through the flow stage, and damaged copies of them.

The corpus is the copy in tests/data/shared and, when present, the whole of ../shared.
``gate_batch`` must never raise: each file ends either in the gate counts or as a
rejected ledger row whose reason names the file and the problem (config/README.md,
``ledger.tsv``). The outcomes are checked
against what the files are, established here without ckpk: the first bytes of each file
(the "FCS" magic that opens every FCS HEADER) and the channel names written in its TEXT segment.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import flowio
import numpy as np
import pytest
from conftest import CORPORA, SHARED, corpus_path, reference_path, shared_path

from ckpk.flow.stage import gate_batch
from ckpk.flow.strategy import gate_paths, load_strategy

PROJECT = Path(__file__).resolve().parents[1]
SHIPPED = PROJECT / "resources" / "gating" / "car_t.xml"
CART = PROJECT / "tests" / "data" / "flow" / "100715_cart.xml"

# The channels each strategy gates on, read off the strategy files, and the compensation.
CHANNELS = {
    SHIPPED.name: {
        "FSC-A",
        "FSC-H",
        "SSC-A",
        "FITC-A",
        "PE-A",
        "PerCP-Cy5-5-A",
        "PE-Cy7-A",
        "APC-A",
        "BV421-A",
    },
    CART.name: {"FSC-A", "FSC-H", "SSC-A", "V450-A", "R780-A", "V655-A", "V800-A", "G710-A"},
    # A FlowJo 10 workspace (FlowKit's test data): two uncompensated channels.
    "simple_poly_and_rect.wsp": {"channel_A", "channel_B"},
}
COMPENSATION = {SHIPPED.name: "file", CART.name: "file", "simple_poly_and_rect.wsp": "none"}
# The FCS files of ../shared/data/fcs (its README.md) and which of them each strategy can gate:
# only 100715.fcs carries the 100715_cart.xml panel; no shared file carries the shipped CAR
# T panel (the simulated trial does); FlowKit's two synthetic files carry channel_A/B. Every
# other FCS file lacks channels the strategy needs.
FCS_FILES = {
    "flowcore/0877408774.B08",
    "flowcore/0877408774.E07",
    "flowcore/0877408774.F06",
    "flowcore/compdata/data/060909.001",
    "flowcore/compdata/data/060909.002",
    "flowcore/compdata/data/060909.003",
    "flowcore/compdata/data/060909.004",
    "flowcore/compdata/data/060909.005",
    "flowio/3FITC_4PE_004.fcs",
    "flowio/B01 KC-A-W---91-US.fcs",
    "flowio/G11.fcs",
    "flowio/variable_int_example.fcs",
    "flowkit/100715.fcs",
    "flowkit/gate_ref/data1.fcs",
    "flowkit/index_sorted/index_sorted_example.fcs",
    "flowkit/multi_dataset_fcs/coulter.lmd",
    "flowkit/noncompliant/data_start_offset_discrepancy_example.fcs",
    "flowkit/noncompliant/data_stop_offset_discrepancy_example.fcs",
    "flowkit/simple_diamond_example/test_data_diamond_01.fcs",
    "flowkit/simple_line_example/data_set_simple_line_100.fcs",
    "flowkit/test_comp_example.fcs",
}
# The FCS files of the copy in tests/data/shared.
IN_TESTS_DATA = {
    "flowkit/gate_ref/data1.fcs",
    "flowkit/simple_diamond_example/test_data_diamond_01.fcs",
    "flowkit/simple_line_example/data_set_simple_line_100.fcs",
}
GATED = {
    SHIPPED.name: set(),
    CART.name: {"flowkit/100715.fcs"},
    "simple_poly_and_rect.wsp": {
        "flowkit/simple_diamond_example/test_data_diamond_01.fcs",
        "flowkit/simple_line_example/data_set_simple_line_100.fcs",
    },
}


def _text_tokens(path: Path) -> set[str]:
    """Every keyword and value of the first TEXT segment, split on its delimiter (the
    first TEXT byte); channel names ($PnN, $PnS) are among them."""
    with path.open("rb") as handle:
        head = handle.read(58)
        start, stop = int(head[10:18]), int(head[18:26])
        handle.seek(start)
        raw = handle.read(stop - start + 1).decode("latin-1")
    return {token.strip() for token in raw[1:].split(raw[0])}


def _event_count(path: Path) -> int:
    """$TOT as written in the TEXT segment (the value after the "$TOT" keyword)."""
    with path.open("rb") as handle:
        head = handle.read(58)
        start, stop = int(head[10:18]), int(head[18:26])
        handle.seek(start)
        raw = handle.read(stop - start + 1).decode("latin-1")
    tokens = raw[1:].split(raw[0])
    return int(tokens[[t.upper() for t in tokens].index("$TOT") + 1])


def _strategy_path(name: str) -> Path:
    if name.endswith(".wsp"):
        return reference_path("data", "fcs", "flowkit", "simple_line_example", name)
    return {SHIPPED.name: SHIPPED, CART.name: CART}[name]


def _corpus_fcs(corpus: str) -> tuple[Path, list[Path], list[str]]:
    root = corpus_path(corpus, "data", "fcs")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return root, files, [p.relative_to(root).as_posix() for p in files]


@pytest.mark.parametrize("name", sorted(CHANNELS))
@pytest.mark.parametrize("corpus", CORPORA)
def test_every_file_of_the_corpus_is_gated_or_rejected_with_a_reason(corpus, name, tmp_path):
    root, files, labels = _corpus_fcs(corpus)
    fcs_files = FCS_FILES if corpus == SHARED else IN_TESTS_DATA
    strategy = _strategy_path(name)
    qc_dir = tmp_path / "qc"
    counts, ledger = gate_batch(list(zip(files, labels, strict=True)), strategy, qc_dir=qc_dir)

    # One ledger row per file; "ok" exactly for the gated ones, "rejected" for the rest.
    assert sorted(ledger["file"]) == sorted(labels)
    gated = set(counts["file"])
    assert set(ledger.loc[ledger["status"] == "ok", "file"]) == gated == GATED[name] & fcs_files
    rejected = ledger[ledger["status"] == "rejected"].set_index("file")["reason"]
    assert len(rejected) == len(labels) - len(gated)
    for label, reason in rejected.items():
        assert reason.startswith(f"{label}: ")  # names the file

    is_fcs = {
        label: path.read_bytes()[:3] == b"FCS" for path, label in zip(files, labels, strict=True)
    }
    assert {label for label, fcs in is_fcs.items() if fcs} == fcs_files
    not_fcs = [label for label, fcs in is_fcs.items() if not fcs]
    assert len(not_fcs) == len(labels) - len(fcs_files) >= 100  # .wsp, GatingML, truth tables...
    for label in not_fcs:
        assert "not an FCS file" in rejected[label]

    # The other FCS files lack channels: the reason lists exactly the strategy's channels
    # the file's TEXT does not name (as $PnN or $PnS).
    needs = CHANNELS[name]
    for label in sorted(fcs_files - gated):
        match = re.search(
            r"missing channel\(s\) (.+?) that the gating strategy needs", rejected[label]
        )
        assert match, rejected[label]
        missing = set(match.group(1).split(", "))
        assert missing == needs - _text_tokens(root / label), label

    # The gated files have a row for every gate of the strategy.
    for label in gated:
        rows = counts[counts["file"] == label]
        assert list(rows["gate_path"]) == gate_paths(load_strategy(strategy))
        assert (rows["events"] == _event_count(root / label)).all()
        assert (rows["compensation"] == COMPENSATION[name]).all()
    assert len(list(qc_dir.glob("*.png"))) == len(gated)


SCATTER_STRATEGY = """<?xml version="1.0" encoding="UTF-8"?>
<gating:Gating-ML xmlns:gating="http://www.isac-net.org/std/Gating-ML/v2.0/gating"
    xmlns:data-type="http://www.isac-net.org/std/Gating-ML/v2.0/datatypes">
  <gating:RectangleGate gating:id="Large">
    <gating:dimension gating:compensation-ref="uncompensated" gating:min="{threshold}">
      <data-type:fcs-dimension data-type:name="{channel}" />
    </gating:dimension>
  </gating:RectangleGate>
</gating:Gating-ML>
"""

# Files read with a tolerated defect: the scatter channel gated, the threshold (in the
# file's linear units) and the note the ledger row must carry.
CORRECTED = {
    "flowkit/multi_dataset_fcs/coulter.lmd": ("FS Lin", 200.0, "holds 2 data sets"),
    "flowkit/noncompliant/data_start_offset_discrepancy_example.fcs": (
        "FSC LinA",
        5000.0,
        "HEADER and TEXT disagree",
    ),
    "flowkit/noncompliant/data_stop_offset_discrepancy_example.fcs": (
        "FSC LinA",
        5000.0,
        "HEADER and TEXT disagree",
    ),
    "flowkit/test_comp_example.fcs": ("FSC-A", 120000.0, "one byte past the data"),
    "flowcore/0877408774.B08": ("FSC-H", 400.0, "empty keyword values"),
}


def _expected_count(path: Path, channel: str, threshold: float) -> int:
    """Events of the first data set at or above ``threshold``, read by FlowIO alone: the
    channel's stored value divided by its $PnG gain (FCS 3.1, linear
    channels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FlowIO warns about the off-by-one DATA offset
        data = flowio.read_multiple_data_sets(
            str(path), ignore_offset_error=True, ignore_offset_discrepancy=True
        )[0]
    events = np.reshape(np.asarray(data.events, dtype=float), (-1, data.channel_count))
    index = data.pnn_labels.index(channel)
    gain = float(data.text.get(f"p{index + 1}g", "1") or 1)
    return int((events[:, index] / gain >= threshold).sum())


@pytest.mark.shared
@pytest.mark.parametrize("label", sorted(CORRECTED))
def test_files_read_with_corrections_are_ok_rows_with_the_note(label, tmp_path):
    path = shared_path("data", "fcs", *label.split("/"))
    channel, threshold, note = CORRECTED[label]
    strategy = tmp_path / "scatter.xml"
    strategy.write_text(SCATTER_STRATEGY.format(channel=channel, threshold=threshold))
    counts, ledger = gate_batch([(path, label)], strategy)
    assert ledger[["file", "status"]].values.tolist() == [[label, "ok"]]
    assert note in ledger["reason"].iloc[0]
    expected = _expected_count(path, channel, threshold)
    assert 0 < expected < int(counts["events"].iloc[0])  # the threshold splits the events
    assert counts["count"].tolist() == [expected]


def _damaged_copies() -> dict[str, tuple[bytes, str]]:
    """Copies of real files damaged the ways files get damaged, with the expected reason."""
    fcs = shared_path("data", "fcs", "flowkit", "100715.fcs").read_bytes()
    accuri = shared_path("data", "fcs", "flowio", "B01 KC-A-W---91-US.fcs").read_bytes()
    text_end = int(fcs[18:26])
    spill_at = fcs.index(b"SPILL", 0, text_end)
    digit = spill_at + fcs[spill_at:text_end].index(b"0.0")  # a coefficient of the matrix
    bad_spill = fcs[:digit] + b"x" + fcs[digit + 1 :]
    return {
        "S01_D0.fcs": (fcs[:40], "too short to hold an FCS header"),
        "S01_D1.fcs": (fcs[:2000], "the header places the keyword (TEXT) segment"),
        "S01_D2.fcs": (fcs[: len(fcs) // 2], "truncated: the event data should extend beyond"),
        "S01_D3.fcs": (fcs[:-1], "truncated: the file ends before the last byte"),
        "S01_D4.fcs": (bad_spill, "spillover matrix ($SPILLOVER) is damaged"),
        "S01_D5.fcs": (b"\x00" * 5000, "not an FCS file"),
        "S01_D6.fcs": (accuri[: len(accuri) - 7], "truncated"),
        "S01_D7.fcs": (b"FCS3.1" + b" " * 52 + b"junk", "damaged"),
    }


@pytest.mark.shared
def test_damaged_copies_are_rejected_with_a_reason(tmp_path):
    copies = _damaged_copies()
    files = []
    for name, (content, _reason) in copies.items():
        (tmp_path / name).write_bytes(content)
        files.append((tmp_path / name, f"flow/S01/{name}"))
    good = shared_path("data", "fcs", "flowkit", "100715.fcs")
    files.append((good, "flow/S01/S01_D14.fcs"))
    counts, ledger = gate_batch(files, CART, qc_dir=tmp_path / "qc")
    assert set(counts["file"]) == {"flow/S01/S01_D14.fcs"}
    reasons = ledger.set_index("file")["reason"]
    statuses = ledger.set_index("file")["status"]
    assert statuses["flow/S01/S01_D14.fcs"] == "ok"
    for name, (_content, expected) in copies.items():
        label = f"flow/S01/{name}"
        reason = reasons[label]
        assert statuses[label] == "rejected"
        assert reason.startswith(f"{label}: ") and expected in reason, reason
    assert (tmp_path / "qc" / "S01__S01_D14.png").is_file()
