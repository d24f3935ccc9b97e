"""The whole workflow on a hostile input folder: it completes, accounts for every entry
and writes nothing outside results_dir; then the same over generated names and cells.

The folder is a small simulated trial plus what a careless or hostile user leaves in a
shared drive: identifiers that are paths, links out of the folder, a FIFO, a link to
/dev/zero, names with braces, tabs or Latin-1 bytes, an infinite study day.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckpk.inputs import scan_input
from ckpk.simulate import SimulationSettings, simulate_trial
from ckpk.tables import read_tsv

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("hostile")]


def run_snakemake(trial: Path, results: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--config"]
    command += [f"input_dir={trial}", f"results_dir={results}", "flow={qc_plots: false}"]
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=900)


def tree(folder: Path, skip: Path) -> set[str]:
    """Every path under ``folder`` (bytes-safe), except ``skip``, what is under it and the
    folders above it that a run creates to hold it."""
    found = set()
    allowed = {str(skip)} | {str(parent) for parent in skip.parents}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        if os.fsdecode(dirpath).startswith(str(skip)):
            continue
        for name in dirnames + filenames:
            found.add(os.fsdecode(os.path.join(dirpath, name)))
    return found - allowed


@pytest.fixture(scope="module")
def base_trial(tmp_path_factory) -> Path:
    trial = tmp_path_factory.mktemp("hostile") / "base"
    simulate_trial(
        trial, SimulationSettings(n_subjects=2, seed=21, events_per_file=2000, workers=1)
    )
    shutil.rmtree(trial / "truth")
    return trial


def _add(root: Path, rel: bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def test_hostile_folder_completes_and_stays_inside_results(base_trial, tmp_path) -> None:
    work = tmp_path / "work"
    trial = work / "trial"
    shutil.copytree(base_trial, trial)
    outside = work / "outside.fcs"
    fcs = next((trial / "flow" / "S01").glob("*.fcs")).read_bytes()
    outside.write_bytes(fcs)
    os.symlink(outside, trial / "flow" / "S01_D99.fcs")
    os.symlink(work / "nowhere.fcs", trial / "flow" / "S01_D98.fcs")
    os.symlink("/dev/zero", trial / "qpcr" / "zero.txt")
    os.symlink(work, trial / "flow" / "up")  # a loop back above the input folder
    os.mkfifo(trial / "flow" / "S01_D97.fcs")
    _add(trial, b"flow/notes {draft}.txt", b"x")
    _add(trial, b"flow/S01/S01_D96\xe9.fcs", fcs)
    _add(trial, b"flow/S01/S01_D95\t.fcs", fcs)
    _add(trial, b"flow/victim.fcs", fcs)
    with open(trial / "subjects.tsv", "a", encoding="utf-8") as sheet:
        sheet.write("../../../victim\tDL1\t\t\t\nA/B\tDL1\t\t\t\n")
    with open(trial / "samples.tsv", "a", encoding="utf-8") as sheet:
        sheet.write("flow/victim.fcs\t../../../victim\t7\t\t\t\t\n")
        sheet.write("flow/S01/S01_D7.fcs\tS01\tinf\t\t\t\t\n")
    results = work / "deep" / "results"
    before = tree(tmp_path, skip=results)

    proc = run_snakemake(trial, results)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert tree(tmp_path, skip=results) == before  # nothing written outside results_dir
    ledger = read_tsv(results / "ledger.tsv").set_index("file")
    assert set(ledger.index) == {entry.rel for entry in scan_input(trial)}
    for rel in (
        "flow/S01_D99.fcs",
        "flow/S01_D98.fcs",
        "qpcr/zero.txt",
        "flow/up",
        "flow/S01_D97.fcs",
        "flow/notes {draft}.txt",
        "flow/S01/S01_D96\\xe9.fcs",
        "flow/S01/S01_D95\\t.fcs",
        "flow/victim.fcs",
    ):
        assert ledger.loc[rel, "status"] == "rejected", rel
    assert "line 4: subject_id '../../../victim'" in ledger.loc["subjects.tsv", "reason"]
    assert "day 'inf' is not a finite number" in ledger.loc["samples.tsv", "reason"]
    nca = read_tsv(results / "pk" / "nca.tsv")
    assert set(nca["subject_id"]) == {"S01", "S02"}  # the rest of the trial completed
    assert sorted(p.name for p in (results / "flow" / "qc").iterdir()) == ["S01", "S02"]
    assert "ckpk: the run finished" in proc.stderr


# ---------------------------------------------------------------- property test
_NAME = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=80,
    ).map(lambda s: s.encode("utf-8")[:200]),
    st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),
    st.sampled_from([b"{x}", b"a}b{", b" ", b"x" * 250, b"S01_D\t7", b"\xe9t\xe9", b"-rf"]),
).filter(lambda b: b not in (b".", b"..") and b.strip(b"\xff") != b"")
_CELL = st.one_of(
    st.just(""),
    st.sampled_from(["inf", "-inf", "nan", "1e308", "-0", '"S01"', '"7"', "D7", "7,5", "١٢"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(names=st.lists(_NAME, min_size=3, max_size=3), cells=st.lists(_CELL, min_size=4, max_size=4))
def test_generated_names_and_cells(base_trial, names, cells) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        trial = work / "trial"
        shutil.copytree(base_trial, trial)
        fcs = next((trial / "flow" / "S01").glob("*.fcs")).read_bytes()
        for folder, name, suffix, data in zip(
            (b"flow/", b"qpcr/", b""),
            names,
            (b".fcs", b".txt", b""),
            (fcs, b"Well\tCT\n", b"x"),
            strict=True,
        ):
            try:
                _add(trial, folder + name[:240] + suffix, data)
            except OSError:
                pass  # a name the file system itself refuses is not the workflow's case
        day, beads, dna, subject = cells
        with open(trial / "samples.tsv", "a", encoding="utf-8", newline="") as sheet:
            sheet.write(f"flow/S01/S01_D7.fcs\tS01\t{day}\t\t{beads}\t50\t{dna}\n")
        with open(trial / "subjects.tsv", "a", encoding="utf-8", newline="") as sheet:
            sheet.write(f"{subject}\tDL9\t\t\t\n")
        results = work / "out" / "results"
        before = tree(work, skip=results)
        proc = run_snakemake(trial, results)
        if proc.returncode != 0:  # a stop is allowed: one clear line, no traceback
            assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
            assert any(line.startswith("ckpk: ") for line in proc.stderr.splitlines())
            return
        assert tree(work, skip=results) == before
        ledger = read_tsv(results / "ledger.tsv")
        assert set(ledger["file"]) == {entry.rel for entry in scan_input(trial)}
        assert (results / "pk" / "nca.tsv").is_file()
