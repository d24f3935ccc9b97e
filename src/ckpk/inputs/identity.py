"""Who and when a measurement is: subject and study day from a name or a sheet row.

Identity of a measurement is (subject_id, study day), day 0 being the CAR T infusion. It
comes from the file or plate sample name through a configurable regular expression with
the named groups ``subject_id`` and ``day``, unless ``samples.tsv`` has a row for that
file or sample, which wins (docs/rules.md, "Identity of a measurement").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from ckpk.errors import InputError

DEFAULT_NAME_PATTERN = r"^(?P<subject_id>[A-Za-z0-9-]+)_D(?P<day>-?\d+(\.\d+)?)"

# A study day further than a century from the infusion is a typing slip (1e308, a date
# typed as a day), not a visit; it would also overflow every AUC.
MAX_ABS_STUDY_DAY = 36_525.0


@dataclass(frozen=True)
class Identity:
    subject_id: str
    day: float
    source: str  # "samples.tsv" or "name"


def plausible_day(day: float) -> bool:
    """A finite study day within a century of the infusion."""
    return math.isfinite(day) and abs(day) <= MAX_ABS_STUDY_DAY


def identify(
    name: str,
    pattern: str | re.Pattern[str] = DEFAULT_NAME_PATTERN,
    sheet_row: pd.Series | None = None,
) -> Identity | None:
    """Subject and day of a file or plate sample name; the samples.tsv row wins.

    None when neither gives a subject and a plausible day.
    """
    if sheet_row is not None and pd.notna(sheet_row.get("subject_id")):
        day = float(sheet_row["day"])
        if not plausible_day(day):
            return None
        return Identity(str(sheet_row["subject_id"]), day, "samples.tsv")
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = regex.match(name)
    if match is None:
        return None
    try:
        day = float(match.group("day"))
        subject = match.group("subject_id")
    except (IndexError, ValueError, TypeError):
        return None
    if not subject or not plausible_day(day):
        return None
    return Identity(subject, day, "name")


def sample_sheet_row(sheet: pd.DataFrame | None, *keys: str) -> pd.Series | None:
    """The samples.tsv row whose ``sample`` equals the first matching key."""
    if sheet is None or sheet.empty:
        return None
    index = {str(s): i for i, s in enumerate(sheet["sample"])}
    for key in keys:
        if key in index:
            return sheet.iloc[index[key]]
    return None


def check_name_pattern(pattern: str) -> re.Pattern[str]:
    """Compile the configured name pattern; it must have subject_id and day groups."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InputError(
            f"sample_name_pattern {pattern!r} is not a regular expression: {exc}"
        ) from exc
    missing = {"subject_id", "day"} - set(regex.groupindex)
    if missing:
        raise InputError(
            f"sample_name_pattern {pattern!r} lacks the named group(s) {', '.join(sorted(missing))}"
        )
    return regex
