"""Reading FCS files for gating, with the checks a lab needs before trusting one.

:func:`read_fcs` checks the HEADER and the layout keywords, has FlowIO decode the events
(tolerating known writer quirks, :mod:`ckpk.flow.fcs_decode`), keeps only the technical
keywords (:mod:`ckpk.flow.privacy`) and hands FlowKit a ``Sample``. :func:`check_channels`
then tells whether the file has what a gating strategy needs: its channels and a usable
compensation (:mod:`ckpk.flow.compensation`).

Also tolerated, with a note: a $TIMESTEP that is not a number (seen in anonymised
exports) leaves the Time channel unscaled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

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
from ckpk.flow.privacy import technical_keywords
from ckpk.flow.strategy import required_dimensions

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


def _check_layout(data: flowio.FlowData, name: str) -> list[str]:
    notes: list[str] = []
    text = data.text
    if data.events is None:
        raise file_error(name, "the event data could not be decoded")
    expected = data.event_count * data.channel_count
    if len(data.events) != expected:
        raise file_error(
            name,
            f"truncated or damaged: the file declares {data.event_count} events x "
            f"{data.channel_count} channels but holds {len(data.events)} values",
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


def read_fcs(path: str | Path, label: str | None = None) -> tuple[flowkit.Sample, list[str]]:
    """Read one FCS 2.0/3.0/3.1 file as a FlowKit ``Sample`` plus notes on tolerated quirks.

    ``label`` (default: the file name) becomes the sample id and names the file in every
    message. The returned sample's ``metadata`` holds only the technical keywords
    (:data:`ckpk.flow.privacy.TECHNICAL_KEYWORDS`) and the per-channel keywords; its id
    and file names never come from $FIL.
    Raises :class:`~ckpk.errors.InputError` naming the file when it cannot be used.
    """
    import flowkit  # deferred: importing FlowKit costs ~2 s (benchmarks/README.md)

    path = Path(path)
    name = label if label is not None else path.name
    _version, notes = _check_header(path, name)
    head, text_notes, options = parse_flowdata(path, name, only_text=True)
    _check_text(head.text, name)
    data, parse_notes, options = parse_flowdata(path, name, options=options)
    notes += text_notes + parse_notes
    notes += check_channel_names(data, path, name)
    notes += _check_layout(data, name)
    notes += data_set_notes(data, path, options)

    # Privacy: drop every non-technical keyword before FlowKit sees the TEXT, so neither
    # Sample.metadata nor Sample.id/original_filename/acquisition_date can carry it.
    data.text = technical_keywords(data.text)
    data.name = name
    try:
        sample = flowkit.Sample(data, sample_id=name)
    except (ValueError, TypeError, IndexError) as error:
        raise file_error(
            name, f"the event data could not be decoded ({type(error).__name__})"
        ) from None
    sample.current_filename = name
    sample.original_filename = name
    sample.acquisition_date = None
    raw = sample.get_events(source="raw")
    if raw.shape[0] != sample.event_count:
        raise file_error(name, "the number of events read does not match $TOT")
    if not np.isfinite(raw).all():
        notes.append("some event values are not finite numbers (NaN/inf); they fall in no gate")
    return sample, notes


def _channel_lookup(sample: flowkit.Sample) -> set[str]:
    labels = set(sample.pnn_labels) | {s for s in sample.pns_labels if s}
    # FlowJo writes "/" in channel names as "_" (FlowKit matches both).
    labels |= {label.replace("/", "_") for label in sample.pnn_labels}
    return labels


def _missing_channels(sample: flowkit.Sample, strategy: flowkit.GatingStrategy) -> list[str]:
    """Channels (or fluorochromes, with their detector) the strategy gates on that the file
    lacks."""
    have = _channel_lookup(sample)
    missing: list[str] = []
    for dim_id, comp_ref in required_dimensions(strategy):
        if dim_id in have:
            continue
        matrix = strategy.comp_matrices.get(comp_ref) if comp_ref else None
        fluorochromes = getattr(matrix, "fluorochromes", None) or []
        if dim_id in fluorochromes:
            detector = matrix.detectors[fluorochromes.index(dim_id)]
            if detector in have:
                continue
            dim_id = f"{dim_id} (detector {detector})"
        if dim_id not in missing:
            missing.append(dim_id)
    return missing


def check_channels(sample: flowkit.Sample, strategy: flowkit.GatingStrategy) -> None:
    """Raise :class:`InputError` when the file lacks a channel the strategy gates on.

    A channel matches by PnN, by PnS, by FlowJo's spelling ("/" as "_"), or, for a
    dimension compensated with a strategy matrix, through that matrix's fluorochrome →
    detector mapping (GatingML 2.0 §5.2). Compensation is checked too
    (:func:`ckpk.flow.compensation.check_compensation`): a strategy matrix or the file's
    own $SPILLOVER must name only channels the file has, the file's own must be complete
    and invertible, and a FlowJo strategy using the "Acquisition-defined" matrix needs the
    file to have one that lists every gated compensated channel.
    """
    missing = _missing_channels(sample, strategy)
    if missing:
        raise file_error(
            sample.id,
            f"missing channel(s) {', '.join(missing)} that the gating strategy needs; "
            f"the file has {', '.join(_describe_channels(sample))}",
        )
    check_compensation(sample, strategy)


def _describe_channels(sample: flowkit.Sample) -> Iterable[str]:
    for pnn, pns in zip(sample.pnn_labels, sample.pns_labels, strict=False):
        yield f"{pnn} ({pns})" if pns else pnn
