"""Content keys: a digest of ckpk's own code and of the data a result is made from.

Two caches of the workflow reuse a result while what it is made from is unchanged: the
figures of the PK rules (:mod:`ckpk.report.figure_cache`) and the population fits
(:mod:`ckpk.pk.population_cache`). Both key an entry by the bytes of its data (values,
not row numbers) and of ckpk's source, plus the versions of the libraries that shape it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ckpk


@cache
def code_digest(*packages: str) -> str:
    """ckpk's own source and the versions of ``packages``: new code, new results."""
    found = []
    for name in packages:
        try:
            found.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name}=absent")
    digest = hashlib.sha256(f"{ckpk.__version__} {' '.join(found)}".encode())
    package = Path(ckpk.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def feed(digest: Any, value: object) -> None:
    """Everything a result is made from, in a form whose bytes change when it does."""
    if isinstance(value, pd.DataFrame):
        # Values, not the index: a subject's rows keep their data, but not their row
        # numbers, when another subject gains a row.
        digest.update(repr((list(map(str, value.columns)), list(map(str, value.dtypes)))).encode())
        digest.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
    elif isinstance(value, pd.Series):
        feed(digest, value.to_frame())
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=str):
            feed(digest, str(key))
            feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(b"[")
        for item in value:
            feed(digest, item)
        digest.update(b"]")
    elif isinstance(value, float | np.floating) and math.isnan(value):
        digest.update(b"nan;")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def content_key(values: list, packages: tuple[str, ...] = ()) -> str:
    """The key of a result made by this code (with ``packages``) from ``values``."""
    digest = hashlib.sha256(code_digest(*packages).encode())
    feed(digest, values)
    return digest.hexdigest()
