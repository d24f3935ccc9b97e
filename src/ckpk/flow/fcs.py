"""Reading FCS files for gating, with the checks a lab needs before trusting one.

:func:`read_fcs_file` checks the HEADER and the layout keywords, has FlowIO read the TEXT
(tolerating known writer quirks, :mod:`ckpk.flow.fcs_decode`), keeps only the technical
keywords (:mod:`ckpk.flow.privacy`) and maps the DATA segment, decoding a channel only when
gating asks for it (:mod:`ckpk.flow.fcs_events`, values identical to FlowIO's). A DATA
segment that is not plainly readable is decoded by FlowIO, whose complaints become the
rejection reasons. :func:`read_fcs` hands the same file to FlowKit as a ``Sample``.
:func:`check_channels` then tells whether the file has what a gating strategy needs: its
channels and a usable compensation (:mod:`ckpk.flow.compensation`).

Also tolerated, with a note: a $TIMESTEP that is not a number (seen in anonymised
exports) leaves the Time channel unscaled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flowio
import numpy as np

from ckpk.flow.compensation import check_compensation
from ckpk.flow.fcs_decode import (
    HEADER_BYTES,
    check_channel_names,
    data_set_notes,
    file_error,
    parse_flowdata,
)
from ckpk.flow.fcs_events import OFF_BY_ONE_NOTE, ChannelScale, FcsEvents, data_layout
from ckpk.flow.plan import GatingPlan
from ckpk.flow.plan_compile import as_plan
from ckpk.flow.privacy import technical_keywords

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1")


def _check_header(path: Path, name: str) -> tuple[str, list[str]]:
    """Cheap checks before FlowIO: exists, not empty, FCS magic, version, sane offsets."""
    notes: list[str] = []
    if not path.exists():
        raise file_error(name, "file not found")
    if not path.is_file():
        raise file_error(name, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise file_error(name, "the file is empty (0 bytes); copy it again from the cytometer")
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
    if not head.startswith(b"FCS"):
        raise file_error(
            name,
            "not an FCS file: it does not start with the 'FCS' header "
            "(export the tube from the acquisition software as FCS 2.0/3.0/3.1)",
        )
    if len(head) < HEADER_BYTES:
        raise file_error(name, f"truncated: only {size} bytes, too short to hold an FCS header")
    version = head[3:6].decode("ascii", errors="replace")
    if version == "3.2":
        notes.append("FCS 3.2 file read with the FCS 3.1 rules")
    elif version not in SUPPORTED_VERSIONS:
        raise file_error(name, f"FCS version '{version}' is not supported (2.0, 3.0 or 3.1 are)")
    try:
        text_start = int(head[10:18])
        text_stop = int(head[18:26])
    except ValueError:
        raise file_error(
            name, "the FCS header is damaged (TEXT segment offsets unreadable)"
        ) from None
    if not 0 < text_start <= text_stop < size:
        raise file_error(
            name,
            f"truncated or damaged: the header places the keyword (TEXT) segment at bytes "
            f"{text_start}-{text_stop} but the file has {size} bytes",
        )
    return version, notes


def _check_text(text: dict[str, str], name: str) -> None:
    """Layout keywords FlowIO relies on, checked before the event data are decoded."""
    mode = text.get("mode", "L").strip().upper()
    if mode != "L":
        raise file_error(name, f"holds histogram data ($MODE {mode}), not list-mode events")
    datatype = text.get("datatype", "").strip().upper()
    if datatype not in {"I", "F", "D"}:
        raise file_error(
            name,
            f"event data type $DATATYPE '{datatype}' is not supported "
            "(integer, float or double are)",
        )
    for key in ("par", "tot"):
        try:
            value = int(text.get(key, "").strip())
        except ValueError:
            raise file_error(name, f"${key.upper()} is missing or not a number") from None
        if value < 1:
            what = "declares no channels" if key == "par" else "holds no events"
            raise file_error(name, f"the file {what} (${key.upper()} = 0)")
    _check_unique_channel_names(text, name)


def _check_unique_channel_names(text: dict[str, str], name: str) -> None:
    """Two channels with one $PnN cannot be told apart by a strategy (gating would fail
    deep inside FlowKit with an array-shape message)."""
    owners: dict[str, list[str]] = {}
    for i in range(1, int(text["par"].strip()) + 1):
        pnn = text.get(f"p{i}n", "").strip()
        if pnn:
            owners.setdefault(pnn, []).append(f"P{i}")
    twice = {pnn: ps for pnn, ps in owners.items() if len(ps) > 1}
    if twice:
        listed = "; ".join(f"'{pnn}' ({', '.join(ps)})" for pnn, ps in sorted(twice.items()))
        raise file_error(
            name,
            f"channel name(s) used by more than one channel: {listed}; a gating strategy "
            "cannot tell them apart",
        )


def _check_layout(data: flowio.FlowData, name: str, values: int | None) -> list[str]:
    """``values``: how many event values the DATA segment holds (None: undecodable)."""
    notes: list[str] = []
    text = data.text
    if values is None:
        raise file_error(name, "the event data could not be decoded")
    expected = data.event_count * data.channel_count
    if values != expected:
        raise file_error(
            name,
            f"truncated or damaged: the file declares {data.event_count} events x "
            f"{data.channel_count} channels but holds {values} values",
        )
    labels = data.pnn_labels
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        notes.append(f"channel name(s) used twice: {', '.join(duplicated)}")
    timestep = text.get("timestep")
    if timestep is not None and timestep.strip():
        try:
            float(timestep)
        except ValueError:
            # FlowIO would refuse to build the event array; an unreadable time scale only
            # affects the Time channel, which CAR T gating does not use.
            del text["timestep"]
            notes.append("$TIMESTEP is not a number; the Time channel was left unscaled")
    return notes


@dataclass
class FcsFile:
    """One FCS data set ready for gating: technical keywords, channels, lazily decoded
    events (:class:`~ckpk.flow.fcs_events.FcsEvents`) and notes on tolerated quirks.

    Its attributes have the names of FlowKit ``Sample`` attributes, so the channel and
    compensation checks take either.
    """

    id: str
    version: str
    metadata: dict[str, str]  # technical keywords only (ckpk.flow.privacy)
    pnn_labels: list[str]
    pns_labels: list[str]
    fluoro_indices: list[int]
    scatter_indices: list[int]
    time_index: int | None
    events: FcsEvents
    notes: list[str]
    null_channels: list[str] = field(default_factory=list)
    flowdata: Any = field(default=None, repr=False)  # FlowIO's TEXT, for to_sample()

    @property
    def event_count(self) -> int:
        return self.events.event_count

    def column(self, index: int) -> np.ndarray:
        """Channel ``index``, preprocessed as FlowIO/FlowKit's "raw" events."""
        return self.events.column(index)

    def prefetch(self, indices: list[int]) -> None:
        """Decode these channels in one pass (:meth:`FcsEvents.prefetch`)."""
        self.events.prefetch(indices)

    def to_sample(self) -> flowkit.Sample:
        """The same events as a FlowKit ``Sample`` (for FlowKit's engine)."""
        import flowkit  # deferred: importing FlowKit costs ~2 s (benchmarks/README.md)

        data = self.flowdata
        events = self.events
        data.events = np.column_stack([events.stored(i) for i in range(events.channel_count)])
        try:
            sample = flowkit.Sample(data, sample_id=self.id)
        except (ValueError, TypeError, IndexError) as error:
            raise file_error(
                self.id, f"the event data could not be decoded ({type(error).__name__})"
            ) from None
        finally:
            data.events = None
        sample.current_filename = self.id
        sample.original_filename = self.id
        sample.acquisition_date = None
        return sample

    def release(self) -> None:
        """Free the decoded channels and the file mapping."""
        self.events.release()


def _time_step(data: flowio.FlowData) -> float | None:
    """FlowIO's Time scaling: $TIMESTEP (blank: 1) when the file has a Time channel."""
    step = data.text.get("timestep")
    if step is None or data.time_index is None:
        return None
    return float(step) if step.strip() else 1.0


def _events(data: flowio.FlowData, path: Path, layout: object) -> FcsEvents:
    scales = []
    for number in range(1, data.channel_count + 1):
        channel = data.channels[number]
        decades, log0 = channel["pne"]
        scales.append(ChannelScale(decades, log0, channel["pnr"], channel["png"]))
    step = _time_step(data)
    if layout is not None:
        return FcsEvents(scales, data.time_index, step, layout=layout, path=path)
    return FcsEvents(scales, data.time_index, step, values=np.asarray(data.events))


def read_fcs_file(path: str | Path, label: str | None = None) -> FcsFile:
    """Read one FCS 2.0/3.0/3.1 file for gating, with notes on tolerated quirks.

    ``label`` (default: the file name) becomes the file's id and names it in every
    message. ``metadata`` holds only the technical keywords
    (:data:`ckpk.flow.privacy.TECHNICAL_KEYWORDS`) and the per-channel keywords; no name
    ever comes from $FIL.
    Raises :class:`~ckpk.errors.InputError` naming the file when it cannot be used.
    """
    path = Path(path)
    name = label if label is not None else path.name
    _version, notes = _check_header(path, name)
    head, text_notes, options = parse_flowdata(path, name, only_text=True)
    _check_text(head.text, name)
    layout = data_layout(head.header, head.text, head.file_size, head.version)
    if layout is None:
        # Not plainly readable: FlowIO decodes it, and says what is wrong if anything is.
        data, parse_notes, options = parse_flowdata(path, name, options=options)
        values = None if data.events is None else len(data.events)
    else:
        data, values = head, layout.events * len(layout.widths)
        parse_notes = [OFF_BY_ONE_NOTE] if layout.off_by_one else []
    notes += text_notes + parse_notes
    notes += check_channel_names(data, path, name)
    notes += _check_layout(data, name, values)
    notes += data_set_notes(data, path, options)

    # Privacy: drop every non-technical keyword before anything else sees the TEXT, so
    # neither the metadata nor a FlowKit Sample's id or file names can carry it.
    data.text = technical_keywords(data.text)
    data.name = name
    events = _events(data, path, layout)
    data.events = None
    if events.event_count != data.event_count:
        raise file_error(name, "the number of events read does not match $TOT")
    if not events.all_finite():
        notes.append("some event values are not finite numbers (NaN/inf); they fall in no gate")
    return FcsFile(
        id=name,
        version=data.version,
        metadata=data.text,
        pnn_labels=list(data.pnn_labels),
        pns_labels=list(data.pns_labels),
        fluoro_indices=list(data.fluoro_indices),
        scatter_indices=list(data.scatter_indices),
        time_index=data.time_index,
        events=events,
        notes=notes,
        flowdata=data,
    )


def read_fcs(path: str | Path, label: str | None = None) -> tuple[flowkit.Sample, list[str]]:
    """Read one FCS 2.0/3.0/3.1 file as a FlowKit ``Sample`` plus notes on tolerated quirks
    (:func:`read_fcs_file`, then :meth:`FcsFile.to_sample`)."""
    data = read_fcs_file(path, label)
    return data.to_sample(), data.notes


def _channel_lookup(sample: FcsFile | flowkit.Sample) -> set[str]:
    labels = set(sample.pnn_labels) | {s for s in sample.pns_labels if s}
    # FlowJo writes "/" in channel names as "_" (FlowKit matches both).
    labels |= {label.replace("/", "_") for label in sample.pnn_labels}
    return labels


def _missing_channels(sample: FcsFile | flowkit.Sample, plan: GatingPlan) -> list[str]:
    """Channels (or fluorochromes, with their detector) the strategy gates on that the file
    lacks."""
    have = _channel_lookup(sample)
    missing: list[str] = []
    for dim_id, comp_ref in plan.required:
        if dim_id in have:
            continue
        matrix = plan.matrices.get(comp_ref) if comp_ref else None
        fluorochromes = list(getattr(matrix, "fluorochromes", None) or [])
        if dim_id in fluorochromes:
            detector = matrix.detectors[fluorochromes.index(dim_id)]
            if detector in have:
                continue
            dim_id = f"{dim_id} (detector {detector})"
        if dim_id not in missing:
            missing.append(dim_id)
    return missing


def check_channels(
    sample: FcsFile | flowkit.Sample, strategy: GatingPlan | flowkit.GatingStrategy
) -> None:
    """Raise :class:`InputError` when the file lacks a channel the strategy gates on.

    A channel matches by PnN, by PnS, by FlowJo's spelling ("/" as "_"), or, for a
    dimension compensated with a strategy matrix, through that matrix's fluorochrome →
    detector mapping (GatingML 2.0 §5.2). Compensation is checked too
    (:func:`ckpk.flow.compensation.check_compensation`): a strategy matrix or the file's
    own $SPILLOVER must name only channels the file has, the file's own must be complete
    and invertible, and a FlowJo strategy using the "Acquisition-defined" matrix needs the
    file to have one that lists every gated compensated channel.
    """
    plan = as_plan(strategy)
    missing = _missing_channels(sample, plan)
    if missing:
        raise file_error(
            sample.id,
            f"missing channel(s) {', '.join(missing)} that the gating strategy needs; "
            f"the file has {', '.join(_describe_channels(sample))}",
        )
    check_compensation(sample, plan)


def _describe_channels(sample: FcsFile | flowkit.Sample) -> Iterable[str]:
    for pnn, pns in zip(sample.pnn_labels, sample.pns_labels, strict=False):
        yield f"{pnn} ({pns})" if pns else pnn
