"""Shared fixtures and the places where reference files are found.

Real instrument files and the PKNCA reference results come from two places:

- ``tests/data/shared/``: the small part of ``../shared`` that the reference comparisons
  need (PKNCA results, the GatingML 2.0 compliance suite, FlowKit's FlowJo workspaces, one
  or more exports of every qPCR format), at the same relative paths as in ``../shared``.
  It is in the repository, so these comparisons always run. Sources, licences and the one
  modified file are listed in ``tests/data/README.md``.
- ``../shared`` beside the project (``CKPK_SHARED_DIR`` overrides it): the larger corpus
  (every FCS file, the 4 MB FACSAria file with a CAR T-like panel ...). Tests that need
  it are marked ``shared`` and skip with a clear message when it is absent.

``reference_path`` finds a file in the first place and falls back to the second;
``shared_path`` looks only in ``../shared``. A test that checks a whole corpus is
parametrised with ``CORPORA``: it runs on the ``tests/data`` copy always, and on
``../shared`` when it is there (one skip otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CKPK_SHARED_DIR", PROJECT_DIR.parent / "shared"))
# The copy of part of ../shared kept in the repository (tests/data/README.md).
LOCAL_SHARED_DIR = Path(__file__).resolve().parent / "data" / "shared"

TESTS_DATA = "tests/data"
SHARED = "../shared"
CORPORA = [
    pytest.param(TESTS_DATA, id="tests_data"),
    pytest.param(SHARED, id="shared", marks=pytest.mark.shared),
]


def _skip_absent(path: Path, where: str) -> NoReturn:
    pytest.skip(
        f"{path} is absent{where}: this test needs the larger corpus of real instrument "
        "files in ../shared beside the project (set CKPK_SHARED_DIR to point elsewhere); "
        "tests/data/shared holds only part of it"
    )


def shared_path(*parts: str) -> Path:
    """Path under ../shared; skips the calling test when it is not there."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        _skip_absent(path, "")
    return path


def reference_path(*parts: str) -> Path:
    """A reference file or folder, named by its path under ../shared: the copy in
    tests/data/shared when there is one, else ../shared; skips the calling test when
    neither has it."""
    for root in (LOCAL_SHARED_DIR, SHARED_DIR):
        path = root.joinpath(*parts)
        if path.exists():
            return path
    _skip_absent(
        SHARED_DIR.joinpath(*parts), f" and not copied to {LOCAL_SHARED_DIR.joinpath(*parts)}"
    )


def reference_names(*parts: str, pattern: str = "*") -> list[str]:
    """Names of the files matching ``pattern`` in the folder ``parts`` (under ../shared),
    for parametrising at collection time: those of the tests/data copy, plus any more that
    ../shared holds when it is present. ``["(absent)"]`` when neither has the folder, so
    the test still appears and ``reference_path`` skips it with the reason."""
    names = {
        path.name
        for root in (LOCAL_SHARED_DIR, SHARED_DIR)
        if root.joinpath(*parts).is_dir()
        for path in root.joinpath(*parts).glob(pattern)
        if path.is_file()
    }
    return sorted(names) or ["(absent)"]


def corpus_path(corpus: str, *parts: str) -> Path:
    """``parts`` (a path under ../shared) in one corpus: the tests/data copy (it must be
    there) or ../shared itself (skips when absent)."""
    if corpus == TESTS_DATA:
        path = LOCAL_SHARED_DIR.joinpath(*parts)
        assert path.exists(), f"{path} should be in the repository (tests/data/README.md)"
        return path
    assert corpus == SHARED, corpus
    return shared_path(*parts)
