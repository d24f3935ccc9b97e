"""The copy of part of ../shared in tests/data/shared: faithful, licensed, documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import LOCAL_SHARED_DIR, shared_path

README = LOCAL_SHARED_DIR.parent / "README.md"
# Trimmed on purpose (tests/data/README.md); its kept sheets are compared cell by cell in
# test_qpcr_formats.py.
TRIMMED = {
    "data/qpcr/quantstudio/appbio_quantstudio_designandanalysis_QS6_Standard_Curve_example04.xlsx"
}


def _copied() -> list[str]:
    return sorted(
        p.relative_to(LOCAL_SHARED_DIR).as_posix()
        for p in LOCAL_SHARED_DIR.rglob("*")
        if p.is_file()
    )


@pytest.mark.shared
def test_copies_are_byte_identical_to_shared():
    copied = _copied()
    assert len(copied) > 100
    for relative in copied:
        if relative in TRIMMED:
            continue
        original = shared_path(*relative.split("/"))
        assert (LOCAL_SHARED_DIR / relative).read_bytes() == original.read_bytes(), relative


def test_every_instrument_file_has_a_licence_and_a_provenance_row():
    readme = README.read_text(encoding="utf-8")
    for relative in _copied():
        path = Path(relative)
        if path.parts[0] != "data" or path.name.startswith("LICENSE"):
            continue
        # The licence sits in the file's folder or one above it (data/<assay>/<source>/).
        folders = [LOCAL_SHARED_DIR / p for p in path.parents if len(p.parts) >= 3]
        assert any(list(f.glob("LICENSE*")) for f in folders), f"{relative}: no licence"
        source = "/".join(path.parts[:4]) if path.parts[1] == "fcs" else "/".join(path.parts[:3])
        assert f"`{source}" in readme, f"{relative}: {source} not in {README}"
