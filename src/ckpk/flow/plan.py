"""The compiled gating plan: one description of the strategy that the reader, the gate
evaluator and the QC plotter all read.

FlowKit parses the strategy (GatingML 2.0 or a FlowJo workspace, :mod:`ckpk.flow.strategy`)
and :mod:`ckpk.flow.plan_compile` turns its gate tree into a :class:`GatingPlan`: the gates
in an order where every gate comes after its parent and the gates a Boolean gate combines,
each with the channels, compensation and transforms it needs; the transforms as plain
parameters; the strategy's compensation matrices. A plan is plain data, written as JSON
(``flow/plan.json`` in the workflow), so that gating jobs and the start-up check read the
strategy without importing FlowKit.

A gate or transform the fast evaluator does not cover sets :attr:`GatingPlan.fallback`:
the strategy is then gated by FlowKit's own engine and the log says why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Bumped whenever the plan's meaning changes, so a plan written by another ckpk is rebuilt.
PLAN_VERSION = 1
GATE_KINDS = ("rectangle", "polygon", "ellipsoid", "quadrant", "boolean")


@dataclass(frozen=True)
class Dimension:
    """One dimension of a gate: which values, and the gate's bounds on them.

    ``channel`` is the dimension id as the strategy writes it ($PnN, $PnS, FlowJo's spelling
    or a fluorochrome of a strategy matrix); a ratio dimension has ``ratio`` (the id of its
    ratio transform) instead. ``comp`` is the dimension's own compensation reference
    ("FCS", a matrix id, or None for uncompensated).
    """

    channel: str | None
    ratio: str | None = None
    transform: str | None = None
    comp: str | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Quadrant:
    """One quadrant of a quadrant gate: a [low, high) range on some of its dividers."""

    name: str
    ranges: tuple[tuple[int, float | None, float | None], ...]  # (divider index, low, high)


@dataclass(frozen=True)
class Gate:
    """One gate of the plan.

    ``parent`` is the path whose events the gate divides ("/root" for all events; for a
    quadrant gate, its own parent). ``comp`` is the one compensation FlowKit applies to
    every dimension of the gate (FlowKit compensates a gate's events as a whole).
    """

    path: str
    name: str
    parent: str
    kind: str
    comp: str | None = None
    dims: tuple[Dimension, ...] = ()
    complement: bool = False
    vertices: tuple[tuple[float, float], ...] = ()
    mean: tuple[float, ...] = ()
    covariance: tuple[tuple[float, ...], ...] = ()
    distance_square: float = 0.0
    quadrants: tuple[Quadrant, ...] = ()
    operation: str = ""  # Boolean gates: "and", "or", "not"
    refs: tuple[tuple[str, bool], ...] = ()  # Boolean gates: (gate path, complement)

    def child_paths(self) -> list[str]:
        """The paths that hold events: the quadrants of a quadrant gate, else the gate."""
        if self.kind == "quadrant":
            return [f"{self.path}/{q.name}" for q in self.quadrants]
        return [self.path]


@dataclass(frozen=True)
class Transform:
    """A transform as plain parameters (``kind`` names FlowKit's class)."""

    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Matrix:
    """A compensation matrix carried by the strategy (rows and columns: ``detectors``)."""

    detectors: tuple[str, ...]
    fluorochromes: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class GatingPlan:
    """Everything gating needs from a strategy, in evaluation order."""

    source: str  # the strategy file, as given
    digest: str  # SHA-256 of the strategy file's bytes
    sample_group: str | None
    notes: tuple[str, ...]
    gates: tuple[Gate, ...]  # parents (and Boolean operands) before the gates using them
    paths: tuple[str, ...]  # every gate path that holds events, in tree order
    parents: dict[str, str]  # parent path of every path in ``paths``
    required: tuple[tuple[str, str | None], ...]  # (channel, compensation ref) to check
    matrices: dict[str, Matrix]
    transforms: dict[str, Transform]
    file_spillover_channels: tuple[str, ...] = ()
    custom_gate_samples: tuple[str, ...] = ()  # sample ids with sample-specific gates
    fallback: str | None = None  # why FlowKit's engine gates this strategy
    version: int = PLAN_VERSION
    strategy: Any = field(default=None, compare=False, repr=False)  # FlowKit's, when at hand

    def compensation_refs(self) -> set[str]:
        """Compensation references the gates use: matrix ids and/or "FCS"."""
        return {ref for _dim, ref in self.required if ref is not None and ref != "uncompensated"}

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("strategy")
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GatingPlan:
        data = json.loads(text)
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"gating plan version {data.get('version')}, not {PLAN_VERSION}")
        gates = tuple(_gate_from_dict(g) for g in data.pop("gates"))
        return cls(
            **{
                **data,
                "gates": gates,
                "notes": tuple(data["notes"]),
                "paths": tuple(data["paths"]),
                "required": tuple(tuple(r) for r in data["required"]),
                "matrices": {k: _matrix_from_dict(m) for k, m in data["matrices"].items()},
                "transforms": {k: Transform(**t) for k, t in data["transforms"].items()},
                "file_spillover_channels": tuple(data["file_spillover_channels"]),
                "custom_gate_samples": tuple(data["custom_gate_samples"]),
            }
        )


def _gate_from_dict(data: dict) -> Gate:
    return Gate(
        **{
            **data,
            "dims": tuple(Dimension(**d) for d in data["dims"]),
            "vertices": tuple(tuple(v) for v in data["vertices"]),
            "mean": tuple(data["mean"]),
            "covariance": tuple(tuple(r) for r in data["covariance"]),
            "quadrants": tuple(
                Quadrant(q["name"], tuple(tuple(r) for r in q["ranges"])) for q in data["quadrants"]
            ),
            "refs": tuple((path, bool(c)) for path, c in data["refs"]),
        }
    )


def _matrix_from_dict(data: dict) -> Matrix:
    return Matrix(
        tuple(data["detectors"]),
        tuple(data["fluorochromes"]),
        tuple(tuple(row) for row in data["values"]),
    )


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: which strategy a plan was compiled from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_plan(plan: GatingPlan, path: str | Path) -> Path:
    """Write the plan as JSON, atomically (a hidden file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.partial")
    hidden.write_text(plan.to_json() + "\n", encoding="utf-8")
    hidden.replace(path)
    return path


def read_plan(path: str | Path) -> GatingPlan:
    """A plan written by :func:`write_plan`."""
    return GatingPlan.from_json(Path(path).read_text(encoding="utf-8"))


def cached_plan(
    plan_path: str | Path, strategy_path: str | Path, sample_group: str | None
) -> GatingPlan | None:
    """The plan at ``plan_path`` when it was compiled from these very strategy bytes and
    sample group by this version of ckpk; otherwise None."""
    try:
        plan = read_plan(plan_path)
        digest = file_digest(strategy_path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if plan.digest != digest or (plan.sample_group or None) != (sample_group or None):
        return None
    return plan
