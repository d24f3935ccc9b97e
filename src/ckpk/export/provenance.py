"""What a report needs to be trusted: the software versions, the configuration used, and
the main tables as pages a browser shows (not only as downloads)."""

from __future__ import annotations

import html
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from ckpk.tables import format_value, read_tsv

#: Packages whose versions decide the numbers (the lock pins them; the report says which).
VERSIONED = ("ckpk", "flowkit", "flowio", "snakemake", "numpy", "scipy", "pandas", "matplotlib")


def versions() -> pd.DataFrame:
    """Package → installed version, and the Python that ran the workflow."""
    rows = [{"package": "python", "version": platform.python_version()}]
    for package in VERSIONED:
        try:
            rows.append({"package": package, "version": metadata.version(package)})
        except metadata.PackageNotFoundError:
            rows.append({"package": package, "version": "not installed"})
    return pd.DataFrame(rows)


def config_text(config: Mapping[str, object]) -> str:
    """The configuration as YAML, keys in their order (what the run actually used)."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)


_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 0; }
p { margin: 6px 8px; color: #444; }
.wrap { overflow: auto; max-height: 92vh; }
table { border-collapse: collapse; white-space: nowrap; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { position: sticky; top: 0; background: #eef2f7; }
td.t { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
"""


def html_table(source: Path, title: str, limit: int = 2000) -> str:
    """One results table as a self-contained HTML page with a sticky header."""
    table = read_tsv(source)
    shown = table.head(limit)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for value in row:
            text = format_value(value)
            kind = "" if _numeric(text) else ' class="t"'
            cells.append(f"<td{kind}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f" (first {limit} of {len(table)} rows)" if len(table) > limit else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><p><b>{html.escape(title)}</b>: "
        f"{len(table)} rows{more}; file {html.escape(source.name)}</p><div class='wrap'>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</div></body></html>"
    )


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
