"""The fast gate evaluator: every gate of a plan on one file's events.

Gates are taken in the plan's order, each tested only on its parent's events (a gate's
members are its parent's events inside it, as in FlowKit), with FlowKit's own tests:
rectangle ranges and quadrants as [low, high) ranges (:mod:`ckpk.flow.thresholds`);
polygons by winding number and ellipsoids by Mahalanobis distance, through the same
flowutils functions FlowKit calls; Boolean gates on the membership of the gates they
combine. Members are kept as sorted event indices.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from ckpk.flow import guard, thresholds
from ckpk.flow.event_space import EventSpace
from ckpk.flow.plan import Gate

ROOT = "/root"


def _inside(gate: Gate, values: list[np.ndarray]) -> np.ndarray:
    """Which of the events whose ``values`` are given lie inside ``gate``."""
    from flowutils import gating

    if gate.kind == "polygon":
        points = np.ascontiguousarray(np.column_stack(values), dtype=np.float64)
        inside = gating.points_in_polygon(np.array(gate.vertices, dtype=np.float64), points)
    elif gate.kind == "ellipsoid":
        points = np.column_stack(values)
        inside = gating.points_in_ellipsoid(
            [list(row) for row in gate.covariance],
            list(gate.mean),
            gate.distance_square,
            points,
        )
    else:
        raise ValueError(f"gate kind {gate.kind!r} is not tested on values")
    return np.logical_not(inside) if gate.complement else inside


def _boolean(gate: Gate, parent: np.ndarray, members: dict[str, np.ndarray], count: int):
    operands = []
    for path, complement in gate.refs:
        mask = np.zeros(count, dtype=bool)
        mask[members[path]] = True
        member = mask[parent]
        operands.append(~member if complement else member)
    if gate.operation == "and":
        return np.logical_and.reduce(operands)
    if gate.operation == "or":
        return np.logical_or.reduce(operands)
    return np.logical_not(operands[0])


def evaluate(space: EventSpace, check: bool = True) -> dict[str, np.ndarray]:
    """Members (sorted event indices) of every gate path of the plan, and "/root".

    With ``check``, :func:`ckpk.flow.guard.check` proves each decision equals FlowKit's
    and raises :class:`~ckpk.flow.event_space.NeedsFlowKit` when it cannot.
    """
    count = space.count
    members: dict[str, np.ndarray] = {ROOT: np.arange(count)}
    for gate in space.plan.gates:
        parent = members[gate.parent]
        if gate.kind == "boolean":
            members[gate.path] = parent[_boolean(gate, parent, members, count)]
            continue
        if gate.kind in ("rectangle", "quadrant"):
            for path, inside in thresholds.range_gate(space, gate, parent, check).items():
                members[path] = parent[inside]
            continue
        values = space.points(gate, parent)
        members[gate.path] = parent[_inside(gate, values)]
        if check:
            guard.check(space, gate, parent, values)
    return members


def count_rows(
    paths: tuple[str, ...], parents: Mapping[str, str], members: Mapping[str, np.ndarray]
) -> list[dict]:
    """The gate count rows (``flow/gate_counts.tsv`` columns gate_path ... percent_parent)
    in the plan's path order, with FlowKit's percentages."""
    total = len(members[ROOT])
    rows = []
    for path in paths:
        parent = parents[path]
        count = len(members[path])
        parent_count = total if parent == ROOT else len(members[parent])
        # FlowKit's relative percent; undefined under an empty parent.
        percent = (count / float(parent_count)) * 100.0 if parent_count else np.nan
        rows.append(
            {
                "gate_path": path,
                "gate": path.rsplit("/", 1)[-1],
                "count": count,
                "percent_parent": percent,
                "parent": parent,
                "parent_count": parent_count,
            }
        )
    return rows


class Membership(Mapping):
    """Per-event membership (boolean arrays) by gate path, made on first use from the
    members' indices."""

    def __init__(self, members: Mapping[str, np.ndarray], count: int, paths: tuple[str, ...]):
        self._members = members
        self._count = count
        self._paths = paths

    def __getitem__(self, path: str) -> np.ndarray:
        if path not in self._paths:
            raise KeyError(path)
        mask = np.zeros(self._count, dtype=bool)
        mask[self._members[path]] = True
        return mask

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)
