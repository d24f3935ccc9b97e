"""write_tsv replaces a table in one step: a write that fails half-way leaves the old
table (or none) under the final name, never a truncated one."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from ckpk import tables
from ckpk.tables import write_tsv

TABLE = pd.DataFrame({"subject_id": ["S02", "S01"], "value": [1.5, float("nan")]})
EXPECTED = b"subject_id\tvalue\nS01\t\nS02\t1.5\n"


def test_writes_the_table_and_no_leftover(tmp_path) -> None:
    path = tmp_path / "deep" / "t.tsv"
    write_tsv(TABLE, path, sort_by=["subject_id"])
    assert path.read_bytes() == EXPECTED
    assert os.listdir(path.parent) == ["t.tsv"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_mid_write_keeps_the_old_table(tmp_path, monkeypatch, failing) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"old complete table\n")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tables.os, failing, fail)
    with pytest.raises(OSError):
        write_tsv(TABLE, path, sort_by=["subject_id"])
    assert path.read_bytes() == b"old complete table\n"
    assert os.listdir(tmp_path) == ["t.tsv"]


def test_interrupted_first_write_leaves_no_table(tmp_path, monkeypatch) -> None:
    path = tmp_path / "t.tsv"
    monkeypatch.setattr(tables.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        write_tsv(TABLE, path)
    assert os.listdir(tmp_path) == []


def test_mode_follows_the_umask(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        write_tsv(TABLE, tmp_path / "t.tsv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.tsv").stat().st_mode) == 0o640
