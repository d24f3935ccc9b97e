"""One file's events in the strategy's spaces: compensated once, transformed on demand.

:class:`EventSpace` gives a gate's dimension values for the events asked for (its
parent's events), following FlowKit's rules for which values those are:

- a gate is compensated as a whole: if any of its dimensions names a compensation, every
  dimension takes its values from the events compensated with it (channels outside the
  matrix keep their raw values); "FCS" is the file's own $SPILLOVER, and a file without
  one is left uncompensated (GatingML 2.0 §5.2);
- a dimension is found by $PnN, then $PnS, then FlowJo's spelling ("/" as "_"), then as a
  fluorochrome of the strategy matrix it names;
- a ratio dimension divides two raw (uncompensated) channels, found by $PnN.

Compensation multiplies by the inverse of the spillover matrix, once per file and matrix,
for the channels the gates use. FlowKit solves the linear system instead, which rounds
differently in the last bits; :mod:`ckpk.flow.guard` makes sure that cannot change a
gate decision. Each (compensation, transform, channel) is transformed at most once per
event, and only for events that reach a gate using it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckpk.flow import transforms
from ckpk.flow.plan import Dimension, Gate, GatingPlan, Transform

_CHUNK = 1 << 18  # events per block of the compensation product (bounds the memory used)


class NeedsFlowKit(Exception):
    """This file is better gated by FlowKit's own engine (the message says why)."""


@dataclass
class Compensation:
    """A spillover matrix as applied to one file."""

    key: str  # "FCS" or the strategy matrix id
    indices: list[int]  # file channel index of each detector, in the matrix's order
    inverse: np.ndarray
    bound: np.ndarray  # |S^-1| + |S^-1| |S| |S^-1|: scales the rounding bound (guard)
    largest: np.ndarray | None = None  # largest |raw value| per detector (guard, cached)

    @classmethod
    def of(cls, key: str, indices: list[int], matrix: np.ndarray) -> Compensation:
        if matrix.shape != (len(indices), len(indices)):
            raise NeedsFlowKit(f"compensation matrix {key} does not fit its detectors")
        try:
            inverse = np.linalg.inv(matrix)
        except np.linalg.LinAlgError:
            raise NeedsFlowKit(f"compensation matrix {key} cannot be inverted") from None
        magnitude = np.abs(inverse)
        return cls(key, indices, inverse, magnitude + magnitude @ np.abs(matrix) @ magnitude)

    def position(self, index: int) -> int | None:
        return self.indices.index(index) if index in self.indices else None


# Channel names FlowKit's matrix parser never counts as fluorescence.
_NOT_FLUORESCENCE = ("FSC-A", "FSC-H", "FSC-W", "SSC-A", "SSC-H", "SSC-W", "Time")


def _parse_spill(text: str) -> tuple[list[str], np.ndarray]:
    """FlowKit's (flowutils') reading of a one-line $SPILLOVER value."""
    if len(text.splitlines()) != 1:
        raise NeedsFlowKit("a $SPILLOVER value spread over several lines")
    try:
        parts = text.split(",")
        n = int(parts[0])
        names = [item.strip().replace("\n", "") for item in parts[1 : n + 1]]
        items = [item.strip().replace("\n", "") for item in parts[n + 1 :]]
        return names, np.reshape(list(map(float, items)), (n, n))
    except (ValueError, IndexError):
        raise NeedsFlowKit("a $SPILLOVER value FlowKit's parser refuses") from None


def file_compensation(source: object, supplied: tuple[list[str], np.ndarray] | None = None):
    """The file's own spillover as FlowKit applies it for "FCS" (None: uncompensated).

    ``supplied`` (detectors, matrix) stands in for the file's $SPILLOVER. Fluorescence
    channels the matrix does not list are left as acquired (ckpk declares them FlowKit
    "null channels", :func:`ckpk.flow.compensation.compensation_override`).
    """
    from ckpk.flow.compensation import file_spill, spill_channels

    metadata = source.metadata
    if supplied is not None:
        names, matrix = list(supplied[0]), np.asarray(supplied[1], dtype=float)
        listed = set(names)
    else:
        if "spillover" not in metadata and "spill" not in metadata:
            return None
        text = metadata["spillover"] if "spillover" in metadata else metadata["spill"]
        if text != file_spill(source):
            raise NeedsFlowKit("$SPILLOVER and SPILL keywords that disagree")
        names, matrix = _parse_spill(text)
        listed = set(spill_channels(text))
    detectors = [source.pnn_labels[i] for i in source.fluoro_indices]
    null = set(source.null_channels) | {d for d in detectors if d not in listed}
    fluoro = [d for d in detectors if d not in _NOT_FLUORESCENCE and d not in null]
    if set(fluoro) != set(names):
        raise NeedsFlowKit("a $SPILLOVER whose channels do not match the file's")
    order = [names.index(d) for d in fluoro]
    matrix = matrix[order, :][:, order]
    kept = [d for d in detectors if d not in null]
    return Compensation.of("FCS", [source.pnn_labels.index(d) for d in kept], matrix)


class EventSpace:
    """A file's events for one plan: values of any gate dimension for chosen events."""

    def __init__(
        self,
        source: object,
        plan: GatingPlan,
        supplied: tuple[list[str], np.ndarray] | None = None,
    ) -> None:
        self.source = source
        self.plan = plan
        self.count = int(source.event_count)
        self._supplied = supplied
        self._compensations: dict[str | None, Compensation | None] = {}
        self._compensated: dict[tuple[str, int], np.ndarray] = {}
        self._values: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._prefetched = False
        labels = list(source.pnn_labels)
        self._pnn = labels
        self._pns = list(source.pns_labels)
        self._flowjo = [label.replace("/", "_") for label in labels]

    # --- compensation -----------------------------------------------------------------
    def compensation(self, ref: str | None) -> Compensation | None:
        """The matrix a gate compensated with ``ref`` uses on this file (None: none)."""
        if ref not in self._compensations:
            self._compensations[ref] = self._make_compensation(ref)
        return self._compensations[ref]

    def _make_compensation(self, ref: str | None) -> Compensation | None:
        if ref is None:
            return None
        if ref == "FCS":
            return file_compensation(self.source, self._supplied)
        matrix = self.plan.matrices.get(ref)
        if matrix is None:
            raise NeedsFlowKit(f"compensation {ref!r} is not a matrix of the strategy")
        fluoro = {self._pnn[i] for i in self.source.fluoro_indices}
        if not set(matrix.detectors) <= fluoro:
            raise NeedsFlowKit(f"matrix {ref!r} names channels that are not fluorescence here")
        indices = [self._pnn.index(d) for d in matrix.detectors]
        return Compensation.of(ref, indices, np.asarray(matrix.values, dtype=float))

    def _needed(self, compensation: Compensation) -> list[int]:
        """Channels of the compensation's detectors that some gate compensated with it uses."""
        needed: list[int] = []
        for gate in self.plan.gates:
            if gate.kind == "boolean" or self.compensation(gate.comp) is not compensation:
                continue
            for dim in gate.dims:
                if dim.ratio is None:
                    index = self.channel(dim)
                    if index in compensation.indices and index not in needed:
                        needed.append(index)
        return needed

    def compensated(self, compensation: Compensation, index: int) -> np.ndarray:
        """Channel ``index`` compensated, for every event (computed once per file)."""
        key = (compensation.key, index)
        if key not in self._compensated:
            channels = self._needed(compensation)
            if index not in channels:
                channels.append(index)
            columns = [compensation.position(i) for i in channels]
            product = np.ascontiguousarray(compensation.inverse[:, columns].T)
            out = np.empty((len(channels), self.count))
            for start in range(0, self.count, _CHUNK):
                stop = min(start + _CHUNK, self.count)
                block = np.stack([self.raw(i)[start:stop] for i in compensation.indices])
                out[:, start:stop] = product @ block
            for position, channel in enumerate(channels):
                self._compensated[(compensation.key, channel)] = out[position]
        return self._compensated[key]

    # --- raw values and lookups -------------------------------------------------------
    def raw(self, index: int) -> np.ndarray:
        if not self._prefetched:
            self._prefetched = True
            self._prefetch()
        return self.source.column(index)

    def _prefetch(self) -> None:
        """Have the reader decode every channel the gates use in one pass."""
        prefetch = getattr(self.source, "prefetch", None)
        if prefetch is None:
            return
        wanted: list[int] = []
        for gate in self.plan.gates:
            for dim in gate.dims:
                try:
                    if dim.ratio is not None:
                        names = self.plan.transforms[dim.ratio].params["dimensions"]
                        wanted += [self._pnn.index(n) for n in names if n in self._pnn]
                        continue
                    wanted.append(self.channel(dim))
                    compensation = self.compensation(gate.comp)
                except NeedsFlowKit:
                    continue  # the evaluation will say so
                if compensation is not None:
                    wanted += compensation.indices
        prefetch(wanted)

    def channel(self, dim: Dimension) -> int:
        """File channel index of a dimension, found as FlowKit finds it."""
        name = dim.channel
        for labels in (self._pnn, self._pns, self._flowjo):
            if name in labels:
                return labels.index(name)
        matrix = self.plan.matrices.get(dim.comp) if dim.comp is not None else None
        if matrix is not None and name in matrix.fluorochromes:
            detector = matrix.detectors[list(matrix.fluorochromes).index(name)]
            if detector in self._pnn:
                return self._pnn.index(detector)
        raise NeedsFlowKit(f"dimension {name!r} is not a channel of this file")

    def transform(self, name: str | None) -> Transform | None:
        return None if name is None else self.plan.transforms[name]

    # --- gate values --------------------------------------------------------------------
    def data_values(self, gate: Gate, dim: Dimension) -> np.ndarray | None:
        """A dimension's values before its transform, for all events: compensated as the
        gate is; None for ratio dimensions (computed from raw channels)."""
        if dim.ratio is not None:
            return None
        index = self.channel(dim)
        compensation = self.compensation(gate.comp)
        if compensation is not None and index in compensation.indices:
            return self.compensated(compensation, index)
        return self.raw(index)

    def values(self, gate: Gate, dim: Dimension, events: np.ndarray) -> np.ndarray:
        """The dimension's values (compensated and transformed) for ``events``."""
        if dim.ratio is not None:
            key: tuple = ("ratio", dim.ratio, dim.transform)
        else:
            compensation = self.compensation(gate.comp)
            index = self.channel(dim)
            comp_key = compensation.key if compensation and index in compensation.indices else None
            key = ("channel", comp_key, index, dim.transform)
        stored = self._values.get(key)
        if stored is None:
            stored = (np.empty(self.count), np.zeros(self.count, dtype=bool))
            self._values[key] = stored
        values, done = stored
        missing = events[~done[events]]
        if missing.size:
            values[missing] = self._compute(gate, dim, missing)
            done[missing] = True
        return values[events]

    def _compute(self, gate: Gate, dim: Dimension, events: np.ndarray) -> np.ndarray:
        spec = self.transform(dim.transform)
        if dim.ratio is not None:
            ratio = self.plan.transforms[dim.ratio]
            names = ratio.params["dimensions"]
            if not all(name in self._pnn for name in names):
                raise NeedsFlowKit(f"ratio {dim.ratio!r} names a channel not in this file")
            x, y = (self.raw(self._pnn.index(name))[events] for name in names)
            data = transforms.ratio(ratio, x, y)
        else:
            data = self.data_values(gate, dim)[events]
        return data if spec is None else transforms.apply(spec, data)

    def points(self, gate: Gate, events: np.ndarray) -> list[np.ndarray]:
        """Every dimension of ``gate`` for ``events``."""
        return [self.values(gate, dim, events) for dim in gate.dims]
