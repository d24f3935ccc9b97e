"""Gating FCS files with FlowKit's engine and tabulating the gate counts.

FlowKit is the reference (docs/rules.md: gate counts must equal FlowKit's for the same strategy
and file), so the events are gated by ``GatingStrategy.gate_sample`` itself; this module
has the compensation chosen (:mod:`ckpk.flow.compensation`), keeps FlowKit's per-file
caches from leaking between files, and turns the results into the
``flow/gate_counts.tsv`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ckpk.cells import first_line
from ckpk.errors import InputError
from ckpk.flow._flowkit_compat import cached_events
from ckpk.flow.compensation import compensation_override, compensation_source
from ckpk.flow.strategy import iter_gates

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

    from ckpk.flow._flowkit_compat import GatingResults

log = logging.getLogger(__name__)

# Columns of the gate count table, in order (config/README.md flow/gate_counts.tsv, plus context).
GATE_COUNT_COLUMNS = [
    "file",
    "gate_path",
    "gate",
    "count",
    "percent_parent",
    "parent",
    "parent_count",
    "events",
    "compensation",
    "notes",
]


@dataclass
class GatingOutcome:
    """Result of gating one file: the count table, per-event membership and notes.

    ``preprocessed`` is FlowKit's cache of this file's compensated and transformed events
    (keyed by compensation, transform and channel), kept so that the QC plot draws the very
    events that were gated without compensating and transforming them a second time.
    """

    counts: pd.DataFrame
    membership: dict[str, np.ndarray]
    compensation: str
    notes: list[str] = field(default_factory=list)
    preprocessed: dict = field(default_factory=dict, repr=False)


def _membership_and_rows(
    results: GatingResults,
    sample: flowkit.Sample,
    strategy: flowkit.GatingStrategy,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    report = results.report
    order = {path: i for i, (path, _gate, _parent) in enumerate(iter_gates(strategy))}
    rows: list[dict] = []
    membership: dict[str, np.ndarray] = {}
    for rec in report.itertuples(index=False):
        ancestors = tuple(rec.gate_path)
        quadrant_gate = rec.quadrant_parent
        parts = ancestors + ((quadrant_gate,) if quadrant_gate else ()) + (rec.gate_name,)
        path = "/" + "/".join(parts)
        membership[path] = np.asarray(
            results.get_gate_membership(rec.gate_name, gate_path=ancestors), dtype=bool
        )
        rows.append(
            {
                "gate_path": path,
                "gate": rec.gate_name,
                "count": int(rec.count),
                "parent": "/" + "/".join(ancestors),
                "relative_percent": float(rec.relative_percent),
            }
        )
    counts = {row["gate_path"]: row["count"] for row in rows}
    for row in rows:
        parent = row["parent"]
        row["parent_count"] = sample.event_count if parent == "/root" else counts.get(parent)
        parent_count = row["parent_count"]
        # FlowKit reports 0 % under an empty parent; a percentage of nothing is undefined.
        row["percent_parent"] = row.pop("relative_percent") if parent_count else np.nan
    rows.sort(key=lambda r: order.get(r["gate_path"], len(order)))
    return rows, membership


def gate_events(
    sample: flowkit.Sample, strategy: flowkit.GatingStrategy, comp: object = "file"
) -> GatingOutcome:
    """Gate one sample with FlowKit; counts, per-event membership (by gate path) and notes.

    ``comp="file"``: compensation exactly as the strategy says ("FCS" = the file's own
    $SPILLOVER). A ``flowkit.Matrix`` (or a DataFrame with detector columns) replaces the
    file's $SPILLOVER wherever the strategy refers to it.
    """
    label, notes = compensation_source(sample, strategy, comp)
    strategy.clear_cache()  # nothing cached under this sample id may come from another file
    try:
        with compensation_override(sample, comp):
            # cache_events=True keeps each channel's transformed events for the gates that
            # share them (the logicle transform otherwise runs once per gate); the cache
            # is keyed by sample id, so it is cleared after every file and handed to the
            # outcome for the QC plot.
            results = strategy.gate_sample(sample, cache_events=True)
        preprocessed = cached_events(strategy, sample.id)
    finally:
        strategy.clear_cache()
    rows, membership = _membership_and_rows(results, sample, strategy)
    counts = pd.DataFrame(rows)
    counts.insert(0, "file", sample.id)
    counts["events"] = sample.event_count
    counts["compensation"] = label
    counts["notes"] = "; ".join(notes)
    return GatingOutcome(counts[GATE_COUNT_COLUMNS], membership, label, notes, preprocessed)


def gate_sample(
    sample: flowkit.Sample, strategy: flowkit.GatingStrategy, comp: object = "file"
) -> pd.DataFrame:
    """Gate counts of one sample: one row per gate, columns :data:`GATE_COUNT_COLUMNS`.

    ``gate_path`` is the gate's full path ("/root/Lymphocytes/Singlets"), ``parent`` its
    parent's path ("/root" for top-level gates, whose ``parent_count`` is all events).
    Counts are FlowKit's ``GatingStrategy.gate_sample`` counts.
    """
    return gate_events(sample, strategy, comp).counts


def _reason(error: BaseException) -> str:
    """The error's type and first line, for a rejection or a note ("KeyError: 'FL1-A'")."""
    if not str(error).strip():
        return type(error).__name__
    return f"{type(error).__name__}: {first_line(error)}"


def gate_files(
    paths: Iterable[str | Path],
    strategy: flowkit.GatingStrategy,
    comp: object = "file",
    labels: Sequence[str] | None = None,
    on_file: Callable[[str, flowkit.Sample, GatingOutcome], None] | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Read, check and gate many FCS files in this process (FlowKit imported once).

    ``labels`` name the files in the table and in messages (default: the path as given).
    ``on_file`` is called with each gated file's label, sample and outcome, e.g. to draw
    its QC plot (:func:`ckpk.flow.stage.qc_plotter`); its failure is a note, never a
    rejection.
    Returns the gate counts of every usable file (rows in file order, gates in tree
    order) and ``(file, reason)`` for each rejected one; a rejection never stops the batch.
    """
    from ckpk.flow.fcs import check_channels, read_fcs

    paths = [Path(p) for p in paths]
    names = [str(p) for p in paths] if labels is None else [str(x) for x in labels]
    if len(names) != len(paths):
        raise ValueError("labels must match paths one to one")
    tables: list[pd.DataFrame] = []
    rejections: list[tuple[str, str]] = []
    for path, name in zip(paths, names, strict=True):
        try:
            sample, notes = read_fcs(path, label=name)
            check_channels(sample, strategy)
        except InputError as error:
            rejections.append((name, str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - a defect nobody foresaw rejects this file only
            log.warning("%s: reading failed", name, exc_info=True)
            rejections.append((name, f"{name}: unreadable or damaged FCS file ({_reason(error)})"))
            continue
        try:
            outcome = gate_events(sample, strategy, comp)
        except Exception as error:  # noqa: BLE001 - any failure rejects this file only
            log.warning("%s: gating failed", name, exc_info=True)
            rejections.append((name, f"{name}: gating failed ({_reason(error)})"))
            continue
        all_notes = notes + outcome.notes
        if on_file is not None:
            try:
                on_file(name, sample, outcome)
            except Exception as error:  # noqa: BLE001 - extra QC never rejects a file
                log.warning("%s: QC output failed", name, exc_info=True)
                all_notes.append(f"QC output failed ({_reason(error)})")
        outcome.preprocessed.clear()  # free this file's events before reading the next
        table = outcome.counts
        table["notes"] = "; ".join(all_notes)
        tables.append(table)
    if tables:
        counts = pd.concat(tables, ignore_index=True)
    else:
        counts = pd.DataFrame({c: pd.Series(dtype=object) for c in GATE_COUNT_COLUMNS})
    return counts, rejections
