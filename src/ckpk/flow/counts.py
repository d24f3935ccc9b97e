"""CAR+ T cells per µL of blood and % of CD3+ from gate counts (docs/rules.md).

Absolute counts, as ISHAGE/ISCT single- and dual-platform counting define them:

- single platform, with counting beads of known number in the tube::

      cells/µL = gate events / bead events × beads_per_test / blood_ul

- dual platform, scaling the lymphocyte gate by the haematology analyser's count::

      cells/µL = gate events / lymphocyte-gate events × lymphocytes_per_ul

Single platform is used whenever it can be (bead gate with events, beads per test and
blood volume known); otherwise dual platform; otherwise ``car_per_ul`` stays empty while
``car_pct_cd3`` is still reported. A file with fewer CAR+ events than ``flow.lloq_events``
is below the limit of quantification (``blq`` true); the same factor turns
``lloq_events`` into ``lloq_per_ul``, the LLOQ of that sample in cells/µL, which the PK
stage uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ckpk.cells import number
from ckpk.flow import GATE_ROLES, REQUIRED_GATE_KEYS

SINGLE_PLATFORM = "single-platform beads"
DUAL_PLATFORM = "dual-platform CBC"

# config/README.md flow/car_t.tsv columns, then the working columns a reviewer needs.
CAR_T_COLUMNS = [
    "file",
    "subject_id",
    "day",
    "events",
    "cd3_count",
    "car_count",
    "car_pct_cd3",
    "car_per_ul",
    "blq",
    "count_method",
    "bead_count",
    "lymphocyte_count",
    "b_cell_count",
    "b_cells_per_ul",
    "lloq_per_ul",
    "lloq_pct_cd3",
    "compensation",
    "flags",
]

# Accepted names for the gate roles: the role ("beads"), the config key ("bead_gate") or
# the key without "_gate" ("bead").
_ROLE_ALIASES = {
    alias: role
    for key, role in GATE_ROLES.items()
    for alias in (role, key, key.removesuffix("_gate"))
}


def _roles(gates: Mapping[str, str | None]) -> dict[str, str | None]:
    roles: dict[str, str | None] = dict.fromkeys(GATE_ROLES.values())
    for key, path in gates.items():
        role = _ROLE_ALIASES.get(key)
        if role is None:
            raise KeyError(f"unknown gate role '{key}' (use {', '.join(sorted(_ROLE_ALIASES))})")
        roles[role] = path or None
    for role in (GATE_ROLES[key] for key in REQUIRED_GATE_KEYS):
        if roles[role] is None:
            raise KeyError(f"the {role} gate is required")
    return roles


def _file_events(rows: pd.DataFrame) -> float:
    if "events" in rows and rows["events"].notna().any():
        return number(rows["events"].dropna().iloc[0], finite=True)
    top = rows[rows["parent"] == "/root"] if "parent" in rows else rows.iloc[0:0]
    return number(top["parent_count"].iloc[0], finite=True) if len(top) else math.nan


def _absolute_factor(
    counts: dict[str, float],
    roles: dict[str, str | None],
    sample: Mapping[str, object],
    flags: list[str],
) -> tuple[float, str]:
    """Cells/µL per gate event and the counting method (NaN, "" when none applies)."""
    bead_gate = roles["beads"]
    unused_beads = ""
    if bead_gate is not None:
        beads = counts.get(bead_gate, math.nan)
        per_test = number(sample.get("beads_per_test"), finite=True)
        blood_ul = number(sample.get("blood_ul"), finite=True)
        if beads == 0:
            flags.append("bead gate has 0 events: no single-platform count")
        elif math.isnan(beads):
            flags.append(f"bead gate {bead_gate} missing from the gate counts")
        elif per_test > 0 and blood_ul > 0:
            return per_test / (beads * blood_ul), SINGLE_PLATFORM
        else:
            # Only worth saying when no CBC count saves the day: a dual-platform lab
            # keeps the bead gate of a shared strategy without meaning to use it.
            unused_beads = "beads counted but beads_per_test/blood_ul not given"
    lymph_gate = roles["lymphocytes"]
    lymphs_per_ul = number(sample.get("lymphocytes_per_ul"), finite=True)
    if lymph_gate is not None and not math.isnan(lymphs_per_ul) and lymphs_per_ul >= 0:
        lymph_events = counts.get(lymph_gate, math.nan)
        if lymph_events > 0:
            return lymphs_per_ul / lymph_events, DUAL_PLATFORM
        flags.append("lymphocyte gate has 0 events: no dual-platform count")
    if unused_beads:
        flags.append(unused_beads)
    flags.append("no usable bead or CBC lymphocyte count: car_per_ul not computed")
    return math.nan, ""


# Counted roles in the order their flags are reported.
_COUNTED_ROLES = ("cd3", "car", "beads", "lymphocytes", "b_cells")
# Columns of whole event counts (empty when unknown) and of real numbers.
_COUNT_COLUMNS = (
    "events",
    "cd3_count",
    "car_count",
    "bead_count",
    "lymphocyte_count",
    "b_cell_count",
)
_REAL_COLUMNS = (
    "day",
    "car_pct_cd3",
    "car_per_ul",
    "b_cells_per_ul",
    "lloq_per_ul",
    "lloq_pct_cd3",
)


def car_t_table(
    gate_counts: pd.DataFrame,
    samples: pd.DataFrame,
    gates: Mapping[str, str | None],
    lloq_events: float,
) -> pd.DataFrame:
    """One row per FCS file with CAR+ T cells as % of CD3+ and per µL (columns
    :data:`CAR_T_COLUMNS`).

    ``gate_counts``: the table from :func:`ckpk.flow.gating.gate_files` (file, gate_path,
    count, parent, parent_count, events, compensation, notes). ``samples``: one row per
    file with ``file``, ``subject_id``, ``day`` and, where known, ``lymphocytes_per_ul``,
    ``beads_per_test``, ``blood_ul``. ``gates``: gate paths by role (``car``, ``cd3``,
    ``beads``, ``lymphocytes``, ``b_cells``, or the config keys ``car_gate`` ...).
    """
    roles = _roles(gates)
    lloq = number(lloq_events, finite=True)
    if math.isnan(lloq) or lloq < 0:
        raise ValueError(f"lloq_events must be a number >= 0, got {lloq_events!r}")
    by_file: dict[str, dict] = {}
    for record in samples.to_dict("records") if len(samples) else []:
        by_file.setdefault(str(record.get("file")), record)
    files = list(dict.fromkeys(gate_counts["file"].astype(str))) if len(gate_counts) else []
    rows = [
        _file_row(
            file,
            gate_counts[gate_counts["file"].astype(str) == file],
            by_file.get(file),
            roles,
            lloq,
        )
        for file in files
    ]
    return _typed(pd.DataFrame(rows, columns=CAR_T_COLUMNS))


def _file_row(
    file: str,
    file_rows: pd.DataFrame,
    sample: Mapping[str, object] | None,
    roles: dict[str, str | None],
    lloq: float,
) -> dict:
    """The CAR T row of one file from its gate count rows and its samples-table row."""
    counts = {
        str(p): number(c, finite=True)
        for p, c in zip(file_rows["gate_path"], file_rows["count"], strict=True)
    }
    flags: list[str] = []
    if "notes" in file_rows:
        flags += [n for n in dict.fromkeys(file_rows["notes"].dropna().astype(str)) if n]
    if sample is None:
        flags.append("no subject_id/day for this file")
        sample = {}
    gated = {role: _role_count(roles[role], counts, flags) for role in _COUNTED_ROLES}
    car, cd3, b_cells = gated["car"], gated["cd3"], gated["b_cells"]
    factor, method = _absolute_factor(counts, roles, sample, flags)
    car_pct_cd3, lloq_pct_cd3 = _percent_of_cd3(car, cd3, lloq, flags)
    blq: object = bool(car < lloq) if not math.isnan(car) else pd.NA
    if blq is True:
        flags.append(f"fewer than {lloq:g} CAR+ events: below LLOQ")
    return {
        "file": file,
        "subject_id": sample.get("subject_id"),
        "day": number(sample.get("day"), finite=True),
        "events": _file_events(file_rows),
        "cd3_count": cd3,
        "car_count": car,
        "car_pct_cd3": car_pct_cd3,
        "car_per_ul": car * factor,
        "blq": blq,
        "count_method": method,
        "bead_count": gated["beads"],
        "lymphocyte_count": gated["lymphocytes"],
        "b_cell_count": b_cells,
        "b_cells_per_ul": b_cells * factor,
        "lloq_per_ul": lloq * factor,
        "lloq_pct_cd3": lloq_pct_cd3,
        "compensation": _compensation(file_rows),
        "flags": "; ".join(dict.fromkeys(flags)),
    }


def _role_count(path: str | None, counts: dict[str, float], flags: list[str]) -> float:
    """Events in the gate at ``path``; NaN when no gate plays the role or it was not counted."""
    if path is None:
        return math.nan
    if path not in counts:
        flags.append(f"gate {path} missing from the gate counts")
        return math.nan
    return counts[path]


def _percent_of_cd3(car: float, cd3: float, lloq: float, flags: list[str]) -> tuple[float, float]:
    """CAR+ events and the LLOQ as % of CD3+ events; NaN without CD3+ events."""
    if cd3 > 0:
        return 100.0 * car / cd3, 100.0 * lloq / cd3
    if cd3 == 0:
        flags.append("CD3 gate has 0 events: car_pct_cd3 not computed")
    return math.nan, math.nan


def _compensation(file_rows: pd.DataFrame) -> str:
    if "compensation" not in file_rows:
        return ""
    return "+".join(dict.fromkeys(file_rows["compensation"].dropna().astype(str)))


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as whole numbers (empty when unknown), ``blq`` true/false/empty, the rest as
    real numbers without infinities."""
    for column in _COUNT_COLUMNS:
        table[column] = pd.array(
            [pd.NA if math.isnan(v) else int(v) for v in table[column].astype(float)],
            dtype="Int64",
        )
    table["blq"] = table["blq"].astype("boolean")
    for column in _REAL_COLUMNS:
        table[column] = table[column].astype(float).replace([np.inf, -np.inf], np.nan)
    return table
