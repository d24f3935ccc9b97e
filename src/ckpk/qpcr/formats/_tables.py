"""Finding a results table by its header names and reading its cells.

Every reader locates its table by column *names*, never by position: vendors add,
drop and reorder columns between software versions, and the header row can sit at
row 1 (CFX), after a title line (LightCycler), after 24 metadata rows (Design &
Analysis) or 42 (QuantStudio ``.xlsx``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from ckpk.errors import InputError

from ._document import Cell, Rows

# Words instruments write instead of a Cq when a well did not amplify, or cells that
# are simply empty. Compared after casefold and whitespace removal.
NO_VALUE_WORDS = frozenset(
    {
        "",
        "undetermined",
        "nan",
        "n/a",
        "na",
        "-",
        "--",
        "—",
        "none",
        "null",
        "noct",
        "nocq",
        "no_amp",
        "noamp",
        "inf",
        "-inf",
    }
)
_DECIMAL_COMMA_RE = re.compile(r"^[+-]?\d+,\d+$")
_DECIMAL_POINT_RE = re.compile(r"^[+-]?\d+\.\d+$")


def norm(value: Cell | object) -> str:
    """A header cell compared loosely: case, spacing and the Cyrillic ``т`` ignored.

    StepOne and 7500 software write ``Cт`` with a Cyrillic small te (U+0442) for the
    subscript T; it is read as ``ct``.
    """
    if value is None:
        return ""
    text = str(value).replace("\ufeff", "").replace("\u00a0", " ")
    text = text.replace("\u0442", "t").replace("\u0422", "T")
    return " ".join(text.split()).casefold()


def find_header(
    rows: Rows,
    columns: Mapping[str, Sequence[str]],
    required: Iterable[str],
    forbidden: Iterable[str] = (),
    scan: int | None = None,
) -> tuple[int, dict[str, int]] | None:
    """The first row holding every ``required`` column, and where each column is.

    ``columns`` maps a logical name to the header names that mean it, in order of
    preference; the first one present wins (so ``("well position", "well")`` picks
    the A1-style column when both exist). Duplicate header names resolve to their first
    occurrence. A row holding any header in ``forbidden`` is skipped (it belongs to
    another format).
    """
    required = list(required)
    forbidden_names = {norm(f) for f in forbidden}
    limit = len(rows) if scan is None else min(scan, len(rows))
    for index in range(limit):
        positions: dict[str, int] = {}
        for position, cell in enumerate(rows[index]):
            name = norm(cell)
            if name and name not in positions:
                positions[name] = position
        if not positions or forbidden_names & positions.keys():
            continue
        found: dict[str, int] = {}
        for logical, aliases in columns.items():
            for alias in aliases:
                if norm(alias) in positions:
                    found[logical] = positions[norm(alias)]
                    break
        if all(name in found for name in required):
            return index, found
    return None


def body(rows: Rows, header: int) -> Rows:
    """Rows after the header up to the first entirely empty row (trailer rows follow)."""
    out: Rows = []
    for row in rows[header + 1 :]:
        if all(_blank(cell) for cell in row):
            break
        out.append(row)
    return out


def cell(row: Sequence[Cell], columns: Mapping[str, int], name: str) -> Cell:
    """The cell of logical column ``name`` (None when the column or cell is absent)."""
    position = columns.get(name)
    if position is None or position >= len(row):
        return None
    return row[position]


def text(value: Cell) -> str:
    """A cell as stripped text (numbers that are whole print without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def detect_decimal(values: Iterable[Cell]) -> str:
    """``","`` when the Cq cells use a decimal comma, else ``"."``.

    Decided on the Cq column because a Cq is always below 100: ``27,102`` can only be a
    decimal comma, whereas a quantity such as ``1,250`` might be a thousands separator.
    """
    for value in values:
        if not isinstance(value, str):
            continue
        token = value.strip()
        if _DECIMAL_COMMA_RE.match(token):
            return ","
        if _DECIMAL_POINT_RE.match(token):
            return "."
    return "."


def number(value: Cell, decimal: str = ".") -> float:
    """A numeric cell as float; NaN for empty and "no value" words.

    With a decimal point, commas are thousands separators (QuantStudio writes
    ``1,250.000``); with a decimal comma, points and spaces are.
    Text that is not a number raises ``ValueError``.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    token = str(value).strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    if token.casefold() in NO_VALUE_WORDS:
        return math.nan
    if decimal == ",":
        token = token.replace(".", "").replace(",", ".")
    else:
        token = token.replace(",", "")
    return float(token)


def _separator_problem(token: str, decimal: str) -> bool:
    """True when a Cq token carries a grouping mark: no cycle number has one, so
    ``30,755`` in a decimal-point file is a typing or export slip, never 30755."""
    other = "," if decimal == "." else "."
    return other in token


def cq_reading(value: Cell, decimal: str, where: str) -> tuple[float, str]:
    """A Cq cell as ``(cq, problem)``: a positive float, or NaN for "not amplified".

    ``Undetermined`` / ``UNDETERMINED`` (Applied Biosystems), ``NaN`` (Bio-Rad), an
    empty cell (LightCycler) and ``N/A`` mean no amplification. A Cq of 0 or below is
    not a cycle number; instruments that write it mean "no Cq", so it is NaN too
    (docs/rules.md, qPCR: not amplified is never 0). A cell that cannot be a Cq (text,
    a thousands separator) gives NaN with a problem naming the well: that well is left
    out and flagged, the rest of the plate is read.
    """
    if isinstance(value, str) and _separator_problem(value.strip(), decimal):
        mark = "decimal point" if decimal == "." else "decimal comma"
        return math.nan, (
            f"{where}: Cq {value!r} holds a grouping mark in a file that uses a {mark}; "
            "not read as a number"
        )
    try:
        cq = number(value, decimal)
    except ValueError:
        return math.nan, f"{where}: Cq {value!r} is neither a number nor a 'not amplified' word"
    if not math.isfinite(cq) or cq <= 0:
        return math.nan, ""
    return cq, ""


def quantity_value(value: Cell, decimal: str, where: str) -> float:
    """A quantity cell: a positive float or NaN (``-``, empty, ``NaN``)."""
    return quantity_reading(value, decimal, where)[0]


def quantity_reading(value: Cell, decimal: str, where: str) -> tuple[float, str]:
    """A quantity cell as ``(quantity, problem)``: a positive float, or NaN.

    Empty, ``-`` and ``NaN`` are simply "no quantity"; a number that is zero, negative
    or infinite cannot be a count of copies, so it comes with a problem (for a standard
    well that drops a level and would silently raise the LLOQ).
    """
    try:
        quantity = number(value, decimal)
    except ValueError:
        raise InputError(f"{where}: quantity {value!r} is not a number") from None
    if math.isnan(quantity):
        return math.nan, ""
    if not math.isfinite(quantity) or quantity <= 0:
        return math.nan, f"{where}: quantity {value!r} is not a positive number of copies"
    return quantity, ""


def flag(value: Cell) -> bool:
    """A yes/no cell (``true``, ``TRUE``, ``Yes``, ``1``, ``Y``) as bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    return norm(value) in {"true", "yes", "y", "1", "x", "omit", "omitted", "excluded"}


def _blank(value: Cell) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()
