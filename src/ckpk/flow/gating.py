"""Gating FCS files with FlowKit's engine and tabulating the gate counts.

FlowKit is the reference (docs/rules.md: gate counts must equal FlowKit's for the same strategy
and file), so the events are gated by ``GatingStrategy.gate_sample`` itself; this module
only chooses what compensation the "FCS" reference means, keeps FlowKit's per-file caches
from leaking between files, and turns the results into the ``flow/gate_counts.tsv`` rows.

Compensation (docs/rules.md): a dimension with ``compensation-ref="FCS"`` (GatingML 2.0 §5.2)
is compensated with the file's own $SPILLOVER (or SPILL/$SPILL); a dimension that names a
matrix carried by the strategy (GatingML ``spectrumMatrix``, FlowJo workspace matrix) uses
that matrix; a FlowJo workspace whose template uses FlowJo's "Acquisition-defined" matrix
means the file's own matrix too (see :mod:`ckpk.flow.strategy`). The ``compensation``
column says which was used: "strategy", "file", "supplied" (a matrix given by the caller
in place of the file's), "none", or several joined by "+".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ckpk.cells import first_line
from ckpk.errors import InputError
from ckpk.flow._flowkit_compat import cached_events
from ckpk.flow.strategy import compensation_refs, required_dimensions

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


def _file_spill(sample: flowkit.Sample) -> str | None:
    metadata = sample.metadata
    return metadata.get("spillover") or metadata.get("spill")


def _spill_text(matrix: object) -> str:
    """A FlowKit Matrix written as an FCS $SPILLOVER value (FCS 3.1 §3.3.32)."""
    values = np.asarray(matrix.matrix, dtype=float)
    detectors = list(matrix.detectors)
    cells = [str(len(detectors)), *detectors, *(repr(float(v)) for v in values.ravel())]
    return ",".join(cells)


def compensation_source(
    sample: flowkit.Sample, strategy: flowkit.GatingStrategy, comp: object = "file"
) -> tuple[str, list[str]]:
    """What compensation gating ``sample`` with ``strategy`` will use, and notes.

    Returns the ``compensation`` label ("strategy", "file", "supplied", "none", or a
    "+"-joined mix) and notes such as a missing $SPILLOVER.
    """
    refs = compensation_refs(strategy)
    labels: list[str] = []
    notes: list[str] = []
    if refs & set(strategy.comp_matrices):
        labels.append("strategy")
    if "FCS" in refs:
        if not (isinstance(comp, str) and comp == "file"):
            labels.append("supplied")
        elif _file_spill(sample):
            labels.append("file")
            gated = {d for d, ref in required_dimensions(strategy) if ref == "FCS"}
            outside = sorted(gated & set(_channels_outside(sample, _file_spill(sample))))
            if outside:
                notes.append(
                    f"gated channel(s) {', '.join(outside)} are not in the file's $SPILLOVER "
                    "matrix, so they were not compensated"
                )
        else:
            # GatingML 2.0 §5.2: "FCS" without a spillover in the file means uncompensated.
            notes.append(
                "the strategy asks for the file's own compensation but the file has no "
                "$SPILLOVER matrix: channels were not compensated"
            )
    return ("+".join(labels) if labels else "none"), notes


def _as_matrix(comp: object, sample: flowkit.Sample) -> object:
    import flowkit

    if isinstance(comp, flowkit.Matrix):
        return comp
    if isinstance(comp, pd.DataFrame):
        return flowkit.Matrix(comp.to_numpy(dtype=float), list(comp.columns))
    raise TypeError("comp must be 'file', a flowkit.Matrix or a DataFrame (detectors as columns)")


def _channels_outside(sample: flowkit.Sample, spill: str) -> list[str]:
    """Fluorescence channels of the file that a $SPILLOVER value does not list."""
    from ckpk.flow.fcs import _spill_channels

    listed = set(_spill_channels(spill))
    return [
        sample.pnn_labels[i]
        for i in sample.fluoro_indices
        if sample.pnn_labels[i] not in listed and sample.pnn_labels[i] not in sample.null_channels
    ]


@contextmanager
def compensation_override(sample: flowkit.Sample, comp: object = "file") -> Iterator[None]:
    """Within the block, the strategy's "FCS" reference means ``comp`` (unless "file").

    FlowKit reads the file's matrix from ``sample.metadata["spillover"/"spill"]``; a
    supplied matrix is put there, written as a $SPILLOVER value, and the file's own
    value is restored afterwards.

    A $SPILLOVER lists the channels it compensates (FCS 3.1 §3.3.32); other fluorescence
    channels, such as the BD Accuri C6 "Width" pulse parameter, are left as acquired, as
    FlowJo leaves them. FlowKit instead refuses a matrix that does not list every channel
    it counts as fluorescence, unless the others are declared "null channels" (its own
    remedy, ``flowkit.Sample(null_channel_list=...)``), so they are declared so in the block.
    """
    original, original_null = sample.metadata, sample.null_channels
    if not (isinstance(comp, str) and comp == "file"):
        matrix = _as_matrix(comp, sample)
        metadata = {k: v for k, v in original.items() if k not in ("spill", "spillover")}
        metadata["spillover"] = _spill_text(matrix)
        sample.metadata = metadata
    spill = _file_spill(sample)
    outside = _channels_outside(sample, spill) if spill else []
    if outside:
        sample.null_channels = [*original_null, *outside]
    try:
        yield
    finally:
        sample.metadata = original
        sample.null_channels = original_null


def _membership_and_rows(
    results: GatingResults,
    sample: flowkit.Sample,
    strategy: flowkit.GatingStrategy,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    from ckpk.flow.strategy import iter_gates

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
    plot_dir: str | Path | None = None,
    on_file: Callable[[str, flowkit.Sample, GatingOutcome], None] | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Read, check and gate many FCS files in this process (FlowKit imported once).

    ``labels`` name the files in the table and in messages (default: the path as given).
    With ``plot_dir``, a QC plot ``<plot_dir>/<label>.png`` ("/" in labels → "__") is drawn
    for each gated file. ``on_file`` is called with each gated sample (e.g. for extra QC).
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
        if plot_dir is not None:
            try:
                from ckpk.flow.qc_plot import plot_gates

                target = Path(plot_dir) / (name.replace("/", "__").replace("\\", "__") + ".png")
                plot_gates(sample, strategy, target, outcome=outcome)
            except Exception as error:  # noqa: BLE001 - a plot never rejects a file
                log.warning("%s: QC plot failed", name, exc_info=True)
                all_notes.append(f"QC plot failed ({_reason(error)})")
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
