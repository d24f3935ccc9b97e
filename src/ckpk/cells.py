"""One home for reading a single table cell or message, whatever wrote it.

Tables reach ckpk from sheets typed by hand, from vendor exports and from ckpk's own TSVs
(read back with :func:`ckpk.tables.read_tsv`), so the same value may arrive as ``"true"``,
``True``, ``"1"``, ``12``, ``"12.0"``, ``NaN`` or ``None``. These helpers give one answer
for each, so no module keeps a private copy with slightly different rules.
"""

from __future__ import annotations

import math
import re

import pandas as pd

TRUE_WORDS = frozenset({"true", "1", "yes", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "n"})
SAFE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def is_missing(value: object) -> bool:
    """None, NaN, pandas' NA/NaT and empty or blank text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    return False


def number(value: object, finite: bool = False) -> float:
    """A cell as float; NaN for missing cells and text that is not a number.

    ``finite=True`` also turns ±inf into NaN (a value no assay can give).
    """
    if isinstance(value, bool) or is_missing(value):
        return math.nan
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    if finite and not math.isfinite(result):
        return math.nan
    return result


def text(value: object) -> str:
    """A cell as stripped text; empty for missing; whole floats without ``.0``."""
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def boolean(value: object, default: bool = False) -> bool:
    """``true``/``false`` cells (also True/False, 1/0, yes/no); ``default`` otherwise."""
    if isinstance(value, bool):
        return value
    if is_missing(value):
        return default
    if isinstance(value, int | float):
        return bool(value)
    word = str(value).strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return default


def booleans(column: pd.Series, default: bool = False) -> pd.Series:
    """:func:`boolean` over a column, as a bool column."""
    return column.map(lambda value: boolean(value, default)).astype(bool)


def first_line(error: BaseException | str) -> str:
    """The first line of an error message (library messages can run to pages);
    the exception's type name when the message is empty."""
    message = str(error)
    if not message.strip():
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return message.strip().splitlines()[0]


def is_safe_name(name: str) -> bool:
    """True when ``name`` can be a file or folder name as it is: letters, digits, ``.``,
    ``_`` and ``-``, not starting with ``.`` or ``-`` (so never ``..`` or ``/``)."""
    return re.fullmatch(SAFE_NAME_PATTERN, name) is not None


def safe_file_name(text_value: str) -> str:
    """``text_value`` with every run of other characters replaced by ``_``, for file
    names built from identifiers (plate, target, subject, analyte)."""
    safe = _UNSAFE_CHARACTERS.sub("_", text_value).lstrip(".-")
    return safe or "_"
