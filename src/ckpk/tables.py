"""Reading and writing the tables of config/README.md.

Every table ckpk writes goes through :func:`write_tsv` so that the same data always
gives the same bytes: rows sorted by the table's key, floats printed with a fixed
number of significant digits, booleans as ``true``/``false`` and missing numbers as
empty cells (config/README.md).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

# 12 significant digits: far below any assay's precision and well inside the 1e-6
# relative agreement the NCA reference demands, yet short enough to read.
FLOAT_DIGITS = 12


def format_value(value: object) -> str:
    """One cell as text: empty for missing, ``true``/``false``, ``%.12g`` for floats."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{float(value):.{FLOAT_DIGITS}g}"
        return "0" if text == "-0" else text
    if isinstance(value, int | np.integer):
        return str(int(value))
    if value is pd.NA or value is pd.NaT:
        return ""
    text = str(value)
    # A tab or newline inside a cell would break the table; free text is flattened.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def write_tsv(
    table: pd.DataFrame,
    path: str | Path,
    columns: Sequence[str] | None = None,
    sort_by: Sequence[str] | None = None,
) -> None:
    """Write ``table`` as a deterministic tab-separated file with a header row.

    ``columns`` fixes the column order (missing ones are added empty, so a stage with
    nothing to report still writes the full header); ``sort_by`` gives the row order.
    """
    table = table.copy()
    if columns is not None:
        for column in columns:
            if column not in table.columns:
                table[column] = np.nan
        extra = [c for c in table.columns if c not in columns]
        table = table[list(columns) + extra]
    if sort_by:
        keys = [k for k in sort_by if k in table.columns]
        if keys:
            table = table.sort_values(keys, kind="mergesort", na_position="last")
    lines = ["\t".join(str(c) for c in table.columns)]
    for row in table.itertuples(index=False, name=None):
        lines.append("\t".join(format_value(v) for v in row))
    write_atomically(Path(path), ("\n".join(lines) + "\n").encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` only ever holds the whole content.

    A run killed mid-write (SIGKILL, a full disk, a power cut) must not leave a
    truncated table under the final name for a later run or a reader to take as done:
    the bytes go to a hidden file beside it, are flushed to disk, and replace ``path``
    in one rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    # os.open with 0o666 gives the mode a plain open() would (the umask applies).
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


# Identifiers stay text even when they look like numbers (subject "001", plate "7").
TEXT_COLUMNS = frozenset(
    {
        "file",
        "subject_id",
        "sample",
        "plate",
        "well",
        "target",
        "task",
        "analyte",
        "unit",
        "source",
        "dose_level",
        "cohort",
        "kind",
        "status",
        "reason",
        "sha256",
        "flag",
        "flags",
        "gate",
        "gate_path",
        "parameter",
        "infusion_date",
        "note",
        "notes",
    }
)


def read_tsv(path: str | Path, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a table written by :func:`write_tsv` (``true``/``false`` become booleans).

    Columns in :data:`TEXT_COLUMNS` or ``text_columns`` are kept as text; the others
    become numbers when every non-empty cell is one.
    """
    table = pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""], dtype=str)
    keep_text = TEXT_COLUMNS | set(text_columns)
    for column in table.columns:
        if column in keep_text:
            continue
        values = table[column].dropna()
        if len(values) and values.isin(["true", "false"]).all():
            table[column] = table[column].map({"true": True, "false": False})
            continue
        numeric = pd.to_numeric(table[column], errors="coerce")
        if len(values) and numeric.notna().sum() == len(values):
            table[column] = numeric
    return table
