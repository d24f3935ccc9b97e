"""Gating FCS files and tabulating the gate counts.

FlowKit is the reference (docs/rules.md: gate counts must equal FlowKit's for the same
strategy and file). FlowKit parses the strategy; ckpk compiles it into a plan
(:mod:`ckpk.flow.plan`) and evaluates the plan itself (:mod:`ckpk.flow.evaluate`), with
the same arithmetic as FlowKit wherever FlowKit's result depends on it, several times
faster. FlowKit's own engine (``GatingStrategy.gate_sample``) gates a file instead when the
plan does not cover the strategy (``GatingPlan.fallback``), when the file has
sample-specific FlowJo gates, or when the fast path cannot prove an event's decision
equals FlowKit's (:mod:`ckpk.flow.guard`); the log says so each time.
This module turns either engine's results into the ``flow/gate_counts.tsv`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ckpk.cells import first_line
from ckpk.errors import InputError
from ckpk.flow.compensation import compensation_override, compensation_source
from ckpk.flow.evaluate import ROOT, Membership, count_rows, evaluate
from ckpk.flow.event_space import EventSpace, NeedsFlowKit
from ckpk.flow.plan import GatingPlan
from ckpk.flow.plan_compile import as_plan

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

    from ckpk.flow._flowkit_compat import GatingResults
    from ckpk.flow.fcs import FcsFile

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
FAST = "fast"
FLOWKIT = "flowkit"


@dataclass
class GatingOutcome:
    """Result of gating one file: the count table, per-event membership and notes.

    ``engine`` is "fast" (ckpk's evaluator) or "flowkit" (FlowKit's ``gate_sample``), with
    ``reason`` saying why FlowKit gated it. ``members`` are each gate's events as sorted
    indices and ``space`` the file's events in the strategy's spaces, which the QC plot
    draws from without compensating or transforming anything a second time.
    """

    counts: pd.DataFrame
    membership: Mapping[str, np.ndarray]
    compensation: str
    notes: list[str] = field(default_factory=list)
    engine: str = FAST
    reason: str = ""
    members: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    space: EventSpace | None = field(default=None, repr=False)

    def release(self) -> None:
        """Free the file's events (the counts stay)."""
        self.space = None
        self.members = {}
        self.membership = {}


class SampleColumns:
    """A FlowKit ``Sample`` seen as the evaluator's event source."""

    def __init__(self, sample: flowkit.Sample) -> None:
        self.sample = sample
        self.id = sample.id
        self.pnn_labels = list(sample.pnn_labels)
        self.pns_labels = list(sample.pns_labels)
        self.fluoro_indices = list(sample.fluoro_indices)
        self.null_channels = list(sample.null_channels)
        self.metadata = sample.metadata
        self.event_count = sample.event_count
        self._raw = sample.get_events(source="raw")

    def column(self, index: int) -> np.ndarray:
        return self._raw[:, index]


def _source(sample: Any) -> Any:
    """The evaluator's view of a file: ckpk's ``FcsFile`` as it is, a FlowKit ``Sample``
    wrapped."""
    return sample if hasattr(sample, "column") else SampleColumns(sample)


def _supplied(comp: object) -> tuple[list[str], np.ndarray] | None:
    """A caller's matrix (in place of the file's $SPILLOVER) as (detectors, values)."""
    if isinstance(comp, str) and comp == "file":
        return None
    if isinstance(comp, pd.DataFrame):
        return [str(c) for c in comp.columns], comp.to_numpy(dtype=float)
    import flowkit

    if isinstance(comp, flowkit.Matrix):
        return list(comp.detectors), np.asarray(comp.matrix, dtype=float)
    raise TypeError("comp must be 'file', a flowkit.Matrix or a DataFrame (detectors as columns)")


def flowkit_strategy(plan: GatingPlan) -> flowkit.GatingStrategy:
    """FlowKit's strategy behind a plan (parsed again from its file when the plan was read
    from JSON), for FlowKit's engine."""
    if plan.strategy is None:
        from ckpk.flow.strategy import load_strategy

        object.__setattr__(plan, "strategy", load_strategy(plan.source, plan.sample_group))
    return plan.strategy


def _flowkit_members(results: GatingResults, sample: flowkit.Sample) -> dict[str, np.ndarray]:
    members: dict[str, np.ndarray] = {ROOT: np.arange(sample.event_count)}
    for rec in results.report.itertuples(index=False):
        ancestors = tuple(rec.gate_path)
        quadrant_gate = rec.quadrant_parent
        parts = ancestors + ((quadrant_gate,) if quadrant_gate else ()) + (rec.gate_name,)
        mask = results.get_gate_membership(rec.gate_name, gate_path=ancestors)
        members["/" + "/".join(parts)] = np.flatnonzero(np.asarray(mask, dtype=bool))
    return members


def _flowkit_gating(sample: Any, plan: GatingPlan, comp: object) -> dict[str, np.ndarray]:
    """Members of every gate by FlowKit's own engine."""
    import flowkit

    if not isinstance(sample, flowkit.Sample):
        sample = sample.to_sample()
    strategy = flowkit_strategy(plan)
    strategy.clear_cache()  # nothing cached under this sample id may come from another file
    try:
        with compensation_override(sample, comp):
            results = strategy.gate_sample(sample, cache_events=True)
    finally:
        strategy.clear_cache()
    return _flowkit_members(results, sample)


def _engine_choice(sample: Any, plan: GatingPlan, engine: str) -> str:
    """Why FlowKit must gate this file ("" when the fast path may)."""
    if engine == FLOWKIT:
        return "FlowKit's engine was asked for"
    if plan.fallback is not None:
        return f"the fast path does not cover this strategy ({plan.fallback})"
    if sample.id in plan.custom_gate_samples:
        return "the FlowJo workspace has sample-specific gates for this file"
    return ""


def gate_events(
    sample: Any, strategy: Any, comp: object = "file", engine: str = "auto"
) -> GatingOutcome:
    """Gate one file; counts, per-event membership (by gate path) and notes.

    ``sample``: ckpk's :class:`~ckpk.flow.fcs.FcsFile` or a FlowKit ``Sample``;
    ``strategy``: a :class:`~ckpk.flow.plan.GatingPlan` or a FlowKit ``GatingStrategy``.
    ``comp="file"``: compensation exactly as the strategy says ("FCS" = the file's own
    $SPILLOVER). A ``flowkit.Matrix`` (or a DataFrame with detector columns) replaces the
    file's $SPILLOVER wherever the strategy refers to it. ``engine``: "auto" (the fast
    path, FlowKit where it must), "fast" (no FlowKit: raises ``NeedsFlowKit`` instead) or
    "flowkit".
    """
    plan = as_plan(strategy)
    source = _source(sample)
    label, notes = compensation_source(source, plan, comp)
    space = EventSpace(source, plan, _supplied(comp))
    reason = _engine_choice(source, plan, engine)
    members = None
    if not reason:
        try:
            members = evaluate(space)
        except NeedsFlowKit as why:
            if engine == FAST:
                raise
            reason = str(why)
            log.info("%s: gated by FlowKit's engine: %s", source.id, reason)
        except Exception as error:  # noqa: BLE001 - FlowKit's engine gives its own answer
            if engine == FAST:
                raise
            reason = f"the fast path failed ({_reason(error)})"
            log.warning("%s: gated by FlowKit's engine: %s", source.id, reason, exc_info=True)
    if members is None:
        members = _flowkit_gating(getattr(source, "sample", sample), plan, comp)
    counts = pd.DataFrame(count_rows(plan.paths, plan.parents, members))
    counts.insert(0, "file", source.id)
    counts["events"] = source.event_count
    counts["compensation"] = label
    counts["notes"] = "; ".join(notes)
    membership = Membership(members, source.event_count, plan.paths)
    return GatingOutcome(
        counts[GATE_COUNT_COLUMNS],
        membership,
        label,
        notes,
        engine=FLOWKIT if reason else FAST,
        reason=reason,
        members=members,
        space=space,
    )


def gate_sample(sample: Any, strategy: Any, comp: object = "file") -> pd.DataFrame:
    """Gate counts of one file: one row per gate, columns :data:`GATE_COUNT_COLUMNS`.

    ``gate_path`` is the gate's full path ("/root/Lymphocytes/Singlets"), ``parent`` its
    parent's path ("/root" for top-level gates, whose ``parent_count`` is all events).
    Counts equal FlowKit's ``GatingStrategy.gate_sample`` counts.
    """
    return gate_events(sample, strategy, comp).counts


def _reason(error: BaseException) -> str:
    """The error's type and first line, for a rejection or a note ("KeyError: 'FL1-A'")."""
    if not str(error).strip():
        return type(error).__name__
    return f"{type(error).__name__}: {first_line(error)}"


def _gate_one(
    path: Path,
    name: str,
    plan: GatingPlan,
    comp: object,
    on_file: Callable[[str, FcsFile, GatingOutcome], None] | None,
) -> tuple[pd.DataFrame | None, str, str]:
    """(count rows, "", engine) for a gated file, (None, reason, "") for a rejected one."""
    from ckpk.flow.fcs import check_channels, read_fcs_file

    try:
        data = read_fcs_file(path, label=name)
        check_channels(data, plan)
    except InputError as error:
        return None, str(error), ""
    except Exception as error:  # noqa: BLE001 - a defect nobody foresaw rejects this file only
        log.warning("%s: reading failed", name, exc_info=True)
        return None, f"{name}: unreadable or damaged FCS file ({_reason(error)})", ""
    try:
        outcome = gate_events(data, plan, comp)
    except Exception as error:  # noqa: BLE001 - any failure rejects this file only
        log.warning("%s: gating failed", name, exc_info=True)
        return None, f"{name}: gating failed ({_reason(error)})", ""
    notes = data.notes + outcome.notes
    if on_file is not None:
        try:
            on_file(name, data, outcome)
        except Exception as error:  # noqa: BLE001 - extra QC never rejects a file
            log.warning("%s: QC output failed", name, exc_info=True)
            notes.append(f"QC output failed ({_reason(error)})")
    outcome.release()  # free this file's events before reading the next
    data.release()
    table = outcome.counts
    table["notes"] = "; ".join(notes)
    return table, "", outcome.engine


def gate_files(
    paths: Iterable[str | Path],
    strategy: Any,
    comp: object = "file",
    labels: Sequence[str] | None = None,
    on_file: Callable[[str, FcsFile, GatingOutcome], None] | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Read, check and gate many FCS files in this process.

    ``strategy`` is a plan or a FlowKit strategy (compiled once here). ``labels`` name the
    files in the table and in messages (default: the path as given). ``on_file`` is called
    with each gated file's label, file and outcome, e.g. to draw its QC plot
    (:func:`ckpk.flow.stage.qc_plotter`); its failure is a note, never a rejection.
    Returns the gate counts of every usable file (rows in file order, gates in tree
    order) and ``(file, reason)`` for each rejected one; a rejection never stops the batch.
    """
    plan = as_plan(strategy)
    _log_engine(plan)
    paths = [Path(p) for p in paths]
    names = [str(p) for p in paths] if labels is None else [str(x) for x in labels]
    if len(names) != len(paths):
        raise ValueError("labels must match paths one to one")
    tables: list[pd.DataFrame] = []
    rejections: list[tuple[str, str]] = []
    engines: dict[str, int] = {FAST: 0, FLOWKIT: 0}
    for path, name in zip(paths, names, strict=True):
        table, reason, engine = _gate_one(path, name, plan, comp, on_file)
        if table is None:
            rejections.append((name, reason))
            continue
        engines[engine] += 1
        tables.append(table)
    finish = getattr(on_file, "finish", None)
    if finish is not None:
        finish()  # e.g. the QC plots of the batch, drawn together
    log.info("gating engine: fast path for %d file(s), FlowKit's engine for %d", *engines.values())
    if tables:
        counts = pd.concat(tables, ignore_index=True)
    else:
        counts = pd.DataFrame({c: pd.Series(dtype=object) for c in GATE_COUNT_COLUMNS})
    return counts, rejections


def _log_engine(plan: GatingPlan) -> None:
    if plan.fallback is None:
        log.info(
            "gating engine: ckpk fast path (%d gates compiled from %s)",
            len(plan.gates),
            Path(plan.source).name or "the strategy",
        )
    else:
        log.warning(
            "gating engine: FlowKit's, the fast path does not cover this strategy: %s",
            plan.fallback,
        )
