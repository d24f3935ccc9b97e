"""``read_plate``: any supported qPCR export → the wells table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ckpk.errors import InputError

from .formats import FORMATS
from .formats._applied import diagnose
from .formats._document import DEFAULT_MAX_UNZIPPED_MB, load_document
from .wells import DEFAULT_CQ_RANGE, WELL_COLUMNS, WELL_EXTRA_COLUMNS, finish_wells

SUPPORTED = (
    "QuantStudio/ViiA7 Results (.txt/.csv/.xlsx), QuantStudio Design & Analysis (.xlsx), "
    "StepOne/7500 Results (.xls/.txt/.csv), Bio-Rad CFX Quantification Cq Results (.csv), "
    "LightCycler 480 Abs Quant (.txt), RDML"
)


def read_plate(
    path: str | Path,
    target: str | Mapping[str, str] | None = None,
    plate: str | None = None,
    max_unzipped_mb: float = DEFAULT_MAX_UNZIPPED_MB,
    cq_range: tuple[float, float] = DEFAULT_CQ_RANGE,
) -> pd.DataFrame:
    """Read one qPCR export into the wells table (:data:`ckpk.qpcr.WELL_COLUMNS` first).

    The format is recognised from the file's content (container bytes, then the header
    names of its tables), not from its extension. ``plate`` is the plate id (default:
    the file stem).

    ``target`` names the assay of wells whose export has no target name (LightCycler
    480 has no target column; CFX leaves ``Target`` empty when only dyes were set up):
    a string names it when those wells were read in a single dye; a mapping
    ``{dye: target}`` names them per dye. Wells still without a target get the dye
    name (``FAM``, ``VIC`` ...), so two dyes are never merged into one assay.

    Wells whose Cq lies outside ``cq_range`` or cannot be read are flagged and omitted
    (``flag`` column); a zip export unpacking to more than ``max_unzipped_mb`` is refused.

    Raises :class:`ckpk.errors.InputError` naming the file and the reason when the file
    is not a supported export, holds only a plate layout (7500 ``Sample Setup``), or has
    no well with a result.
    """
    path = Path(path)
    doc = load_document(path, max_unzipped_mb)
    for fmt in FORMATS:
        if fmt.detect(doc):
            records = fmt.read(doc)
            break
    else:
        reason = diagnose(doc) or (
            "not a recognised qPCR export: no table with the column names of a supported "
            f"format ({SUPPORTED})"
        )
        raise InputError(f"{path.name}: {reason}")
    if not records:
        raise InputError(f"{path.name}: {fmt.NAME} export without any well result")
    wells = finish_wells(records, plate or path.stem, path.name, fmt.NAME, cq_range)
    wells = _name_targets(wells, target)
    wells.attrs["instrument"] = doc.meta.get("Instrument Type", "")
    return wells


def _name_targets(wells: pd.DataFrame, target: str | Mapping[str, str] | None) -> pd.DataFrame:
    """Give wells without a target name the caller's target, else their dye's name."""
    empty = wells["target"] == ""
    if not empty.any():
        return wells
    wells = wells.copy()
    dyes = wells.loc[empty, "reporter"]
    if isinstance(target, Mapping):
        named = dyes.map(lambda dye: target.get(dye, ""))
    elif target and dyes.nunique() <= 1:
        named = pd.Series(target, index=dyes.index)
    else:
        named = pd.Series("", index=dyes.index)
    named = named.where(named != "", dyes)
    wells.loc[empty, "target"] = named.where(named != "", "unnamed target")
    return wells


def read_plates(
    paths: Sequence[str | Path],
    target: str | Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Read several exports: (wells of every readable plate, [(file, reason)] rejected).

    A file that cannot be used never stops the others (docs/rules.md, "Bad input"); its
    reason is returned for the ledger. Plate ids are file stems; a second file with the
    same stem is rejected rather than merged into the first plate.
    """
    tables: list[pd.DataFrame] = []
    rejected: list[tuple[str, str]] = []
    owner: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        if path.stem in owner:
            rejected.append(
                (
                    str(path),
                    f"{path.name}: plate id {path.stem!r} already used by {owner[path.stem]}",
                )
            )
            continue
        try:
            wells = read_plate(path, target=target)
        except InputError as error:
            rejected.append((str(path), str(error)))
            continue
        owner[path.stem] = str(path)
        tables.append(wells)
    if not tables:
        return pd.DataFrame(columns=WELL_COLUMNS + WELL_EXTRA_COLUMNS), rejected
    return pd.concat(tables, ignore_index=True), rejected
