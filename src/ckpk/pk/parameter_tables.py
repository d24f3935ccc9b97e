"""The PK parameter registry as people read it: the column lines of ``ckpk nca --help``
and ``ckpk fit --help``, the tables ``ckpk parameters`` prints and the column tables of
config/README.md (a test checks the README against :func:`parameter_table`).

Plain Python, like :mod:`ckpk.pk.parameters`, so that ``ckpk --help`` stays instant.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from ckpk.pk.parameters import DEFAULT_PARTIAL_AUC_END, TABLES, Parameter


def _rows(parameters: Sequence[Parameter], end: float) -> list[list[str]]:
    return [
        [p.name(end), p.cdisc, p.pknca, p.unit.value, _with_interval(p, end), p.source]
        for p in parameters
    ]


def _with_interval(parameter: Parameter, end: float) -> str:
    """The description, plus the CDISC interval where the code needs one."""
    interval = parameter.cdisc_interval(end)
    return parameter.describe(end) + (f"; CDISC {interval}" if interval else "")


_HEADER = ["column", "CDISC PPTESTCD", "PKNCA", "unit", "description", "source"]


def _used_fields(rows: list[list[str]]) -> list[int]:
    """Indexes of the fields that are not empty in every row (the model has no CDISC code)."""
    return [i for i in range(len(_HEADER)) if any(row[i] for row in rows)]


def column_help(
    parameters: Sequence[Parameter], end: float = DEFAULT_PARTIAL_AUC_END
) -> dict[str, str]:
    """column → one line for ``--help``: description (unit; PKNCA name; CDISC code)."""
    docs = {}
    for p in parameters:
        interval, pknca = p.cdisc_interval(end), p.pknca
        cdisc = f"{p.cdisc} ({interval})" if interval else p.cdisc
        details = (
            [p.unit.value] + [f"PKNCA {pknca}"] * bool(pknca) + [f"CDISC {cdisc}"] * bool(cdisc)
        )
        docs[p.name(end)] = f"{p.describe(end).replace('`', '')} ({'; '.join(details)})"
    return docs


def parameter_table(
    table: str, end: float = DEFAULT_PARTIAL_AUC_END, markdown: bool = False, width: int = 110
) -> str:
    """The registry of ``table`` (``nca`` or ``model``) for PK analysts.

    ``markdown=True`` gives the table of config/README.md; otherwise aligned text with
    the description wrapped, the form ``ckpk parameters`` prints.
    """
    rows = _rows(TABLES[table][1], end)
    used = _used_fields(rows)
    if markdown:
        cells = [[f"`{row[0]}`"] + [row[i] for i in used[1:]] for row in rows]
        cells = [[c.replace("|", "\\|") for c in row] for row in cells]
        lines = ["| " + " | ".join(_HEADER[i] for i in used) + " |"]
        lines.append("|" + "---|" * len(used))
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    # Text: the description, with its source, goes last so that it can wrap under its
    # own heading.
    order = [i for i in used if i < 4] + [4]
    table_rows = [[_HEADER[i] for i in order[:-1]] + ["description [source]"]]
    for row in rows:
        described = f"{row[4]} [{row[5]}]" if row[5] else row[4]
        # A dash says "no code" where an empty cell could look like a layout slip.
        codes = [row[i] or "-" for i in order[:-1]]
        table_rows.append(codes + [described.replace("`", "")])
    widths = [max(len(r[i]) for r in table_rows) for i in range(len(order) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = []
    for row in table_rows:
        lead = "".join(cell.ljust(w + 2) for cell, w in zip(row, widths, strict=False))
        wrapped = textwrap.wrap(row[-1], max(width - indent, 40)) or [""]
        lines.append((lead + wrapped[0]).rstrip())
        lines += [" " * indent + more for more in wrapped[1:]]
    return "\n".join(lines)
