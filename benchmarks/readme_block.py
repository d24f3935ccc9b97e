"""The results blocks of benchmarks/README.md, each between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->``, rewritten by the benchmark scripts (run.py: ``results``,
popfit.py: ``popfit``)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_block(name: str, lines: list[str]) -> None:
    """Replace block ``name`` of benchmarks/README.md with ``lines``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = README.read_text(encoding="utf-8")
    block = "\n".join([begin, *lines, end])
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    README.write_text(text, encoding="utf-8")
