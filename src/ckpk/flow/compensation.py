"""Compensation: which spillover matrix each gated dimension uses, and whether it can.

The rules (docs/rules.md): a dimension with ``compensation-ref="FCS"`` (GatingML 2.0 §5.2)
is compensated with the file's own $SPILLOVER (or SPILL/$SPILL); a dimension that names a
matrix carried by the strategy (GatingML ``spectrumMatrix``, FlowJo workspace matrix) uses
that matrix; a FlowJo workspace whose template uses FlowJo's "Acquisition-defined" matrix
means the file's own matrix too (:mod:`ckpk.flow.strategy` rewrites such dimensions to
"FCS" when it loads the workspace). The ``compensation`` column of the gate counts says
which was used: "strategy", "file", "supplied" (a matrix given by the caller in place of
the file's), "none", or several joined by "+".

Before gating, :func:`check_compensation` rejects a file that the matrices cannot apply
to; while gating, :func:`compensation_override` makes "FCS" mean the matrix chosen and
:func:`compensation_source` labels it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ckpk.errors import InputError
from ckpk.flow.plan import GatingPlan
from ckpk.flow.plan_compile import as_plan

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

_DAMAGED_SPILL = "the file's own spillover matrix ($SPILLOVER) is damaged"
_ACQUISITION_DEFINED = (
    "the FlowJo workspace compensates each file with its own spillover matrix "
    "('Acquisition-defined')"
)


def compensation_refs(strategy: GatingPlan | flowkit.GatingStrategy) -> set[str]:
    """Compensation references used by the gates: matrix ids of the strategy and/or "FCS"."""
    return as_plan(strategy).compensation_refs()


def spill_channels(spill: str) -> list[str]:
    """The channel names a $SPILLOVER value lists; empty when its header is unreadable."""
    parts = [p.strip() for p in spill.split(",")]
    try:
        count = int(parts[0])
    except (ValueError, IndexError):
        return []
    return parts[1 : 1 + count]


def spill_problem(spill: str) -> str | None:
    """What is wrong with a $SPILLOVER value, or None when it is usable.

    FCS 3.1 §3.3.32: ``n, n channel names, n×n numbers`` (row-major, one row per channel);
    compensation divides by this matrix, so it must also be invertible.
    """
    parts = [p.strip() for p in spill.split(",")]
    try:
        count = int(parts[0])
    except ValueError:
        return "its first value (the number of channels) is not a whole number"
    if count < 1:
        return f"it declares {count} channels"
    values = parts[1 + count :]
    if len(parts) < 1 + count or len(values) != count * count:
        return (
            f"it declares {count} channels, so {count * count} coefficients, but holds "
            f"{max(len(values), 0)}"
        )
    try:
        matrix = np.array([float(v) for v in values]).reshape(count, count)
    except ValueError:
        return "some coefficients are not numbers"
    if not np.isfinite(matrix).all():
        return "some coefficients are not finite numbers"
    if np.linalg.matrix_rank(matrix) < count:
        return "the matrix cannot be inverted (singular)"
    return None


def file_spill(sample: flowkit.Sample) -> str | None:
    """The file's own $SPILLOVER (or SPILL/$SPILL) value; None when it has none."""
    metadata = sample.metadata
    return metadata.get("spillover") or metadata.get("spill")


def _spill_text(matrix: object) -> str:
    """A FlowKit Matrix written as an FCS $SPILLOVER value (FCS 3.1 §3.3.32)."""
    values = np.asarray(matrix.matrix, dtype=float)
    detectors = list(matrix.detectors)
    cells = [str(len(detectors)), *detectors, *(repr(float(v)) for v in values.ravel())]
    return ",".join(cells)


def _as_matrix(comp: object) -> object:
    import flowkit

    if isinstance(comp, flowkit.Matrix):
        return comp
    if isinstance(comp, pd.DataFrame):
        return flowkit.Matrix(comp.to_numpy(dtype=float), list(comp.columns))
    raise TypeError("comp must be 'file', a flowkit.Matrix or a DataFrame (detectors as columns)")


def _channels_outside(sample: flowkit.Sample, spill: str) -> list[str]:
    """Fluorescence channels of the file that a $SPILLOVER value does not list."""
    listed = set(spill_channels(spill))
    return [
        sample.pnn_labels[i]
        for i in sample.fluoro_indices
        if sample.pnn_labels[i] not in listed and sample.pnn_labels[i] not in sample.null_channels
    ]


def _is_file(comp: object) -> bool:
    return isinstance(comp, str) and comp == "file"


def compensation_source(
    sample: flowkit.Sample, strategy: GatingPlan | flowkit.GatingStrategy, comp: object = "file"
) -> tuple[str, list[str]]:
    """What compensation gating ``sample`` with ``strategy`` will use, and notes.

    Returns the ``compensation`` label ("strategy", "file", "supplied", "none", or a
    "+"-joined mix) and notes such as a missing $SPILLOVER.
    """
    plan = as_plan(strategy)
    refs = plan.compensation_refs()
    labels: list[str] = []
    notes: list[str] = []
    if refs & set(plan.matrices):
        labels.append("strategy")
    if "FCS" in refs:
        if not _is_file(comp):
            labels.append("supplied")
        elif file_spill(sample):
            labels.append("file")
            gated = {d for d, ref in plan.required if ref == "FCS"}
            outside = sorted(gated & set(_channels_outside(sample, file_spill(sample))))
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
    if not _is_file(comp):
        matrix = _as_matrix(comp)
        metadata = {k: v for k, v in original.items() if k not in ("spill", "spillover")}
        metadata["spillover"] = _spill_text(matrix)
        sample.metadata = metadata
    spill = file_spill(sample)
    outside = _channels_outside(sample, spill) if spill else []
    if outside:
        sample.null_channels = [*original_null, *outside]
    try:
        yield
    finally:
        sample.metadata = original
        sample.null_channels = original_null


def check_compensation(
    sample: flowkit.Sample, strategy: GatingPlan | flowkit.GatingStrategy
) -> None:
    """Raise :class:`InputError` naming the file when its compensation cannot be applied.

    A strategy matrix must name only fluorescence channels of the file; when a gate uses
    the file's own matrix ("FCS"), that $SPILLOVER must name only such channels and be
    complete and invertible, and a FlowJo strategy using the "Acquisition-defined" matrix
    needs the file to have one that lists every gated compensated channel.
    """
    plan = as_plan(strategy)
    fluoro = {sample.pnn_labels[i] for i in sample.fluoro_indices}
    _check_strategy_matrices(sample.id, plan, fluoro)
    if any(ref == "FCS" for _dim, ref in plan.required):
        spill = file_spill(sample)
        if spill:
            _check_file_spill(sample.id, spill, fluoro)
        _check_acquisition_defined(sample, plan, spill)


def _check_strategy_matrices(name: str, plan: GatingPlan, fluoro: set[str]) -> None:
    used_matrices = {ref for _dim, ref in plan.required} & set(plan.matrices)
    for matrix_id in sorted(used_matrices):
        matrix = plan.matrices[matrix_id]
        absent = [d for d in getattr(matrix, "detectors", []) if d not in fluoro]
        if absent:
            raise InputError(
                f"{name}: the strategy's compensation matrix '{matrix_id}' names channel(s) "
                f"{', '.join(absent)} that are not fluorescence channels of this file"
            )


def _check_file_spill(name: str, spill: str, fluoro: set[str]) -> None:
    absent = [c for c in spill_channels(spill) if c not in fluoro]
    if absent or not spill_channels(spill):
        raise InputError(
            f"{name}: {_DAMAGED_SPILL} or names channel(s) not in the file "
            f"({', '.join(absent) or 'unreadable header'})"
        )
    problem = spill_problem(spill)
    if problem:
        raise InputError(f"{name}: {_DAMAGED_SPILL}: {problem}")


def _check_acquisition_defined(sample: flowkit.Sample, plan: GatingPlan, spill: str | None) -> None:
    """A FlowJo strategy whose template uses the "Acquisition-defined" matrix gates on
    "Comp-" channels made from each file's own $SPILLOVER; FlowJo has no such channels for a
    file without one (or whose matrix lacks a gated channel), so the gates cannot be applied
    to it. (A GatingML "FCS" reference without a matrix means uncompensated, GatingML 2.0
    §5.2, and is only noted.)"""
    needed = list(plan.file_spillover_channels)
    if not needed:
        return
    if not spill:
        raise InputError(
            f"{sample.id}: {_ACQUISITION_DEFINED} but this file has no $SPILLOVER/SPILL "
            f"keyword, so its compensated channels ({', '.join(needed)}) do not exist"
        )
    in_spill = set(spill_channels(spill))
    lookup = {label.replace("/", "_"): label for label in sample.pnn_labels}
    lookup.update({s: p for p, s in zip(sample.pnn_labels, sample.pns_labels, strict=False) if s})
    missing = [c for c in needed if c not in in_spill and lookup.get(c, c) not in in_spill]
    if missing:
        raise InputError(
            f"{sample.id}: {_ACQUISITION_DEFINED} but this file's $SPILLOVER does not "
            f"include the gated channel(s) {', '.join(missing)}"
        )
