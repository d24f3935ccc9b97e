"""Argument types and the parser class shared by the ``ckpk`` commands: every argument
error is one line with exit code 2, naming the argument."""

from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

from ckpk.errors import CkpkError


def _wrap(text: str) -> str:
    # Raw formatting keeps the column table aligned, so prose is wrapped here.
    return textwrap.fill(text, width=88)


def _column_help(title: str, docs: dict[str, str]) -> str:
    width = max(len(name) for name in docs)
    lines = [title] + [f"  {name.ljust(width)}  {text}" for name, text in docs.items()]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse adds the usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _positive(what: str):
    """An argparse type: a finite number above 0, named ``what`` in its messages."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, not {text!r}")
        return value

    return parse


_positive_day = _positive("number of days")
_positive_number = _positive("number")
_positive_seconds = _positive("number of seconds")


def _distinct_output(args: argparse.Namespace) -> None:
    """Refuse to write the result over the table it is computed from."""
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise CkpkError(f"-o {args.output} is the input table; write the result elsewhere")
