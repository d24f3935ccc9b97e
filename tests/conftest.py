"""Shared fixtures.

Tests that read the real instrument files and reference results in ``../shared`` use
the ``shared_dir`` fixture, which skips them with a clear message when that folder is
absent (a fresh clone elsewhere); everything else runs on simulated data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CKPK_SHARED_DIR", PROJECT_DIR.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared; skips the calling test when it is not there."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"{path} is absent: the real instrument files and PKNCA references live in "
            "../shared beside the project (set CKPK_SHARED_DIR to point elsewhere)"
        )
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()
