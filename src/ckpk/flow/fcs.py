"""Reading FCS files for gating, with the checks a lab needs before trusting one.

FlowIO (the reader under FlowKit) does the byte-level work; this module decides which of
its tolerances to use, turns its errors into reasons a lab scientist understands, and
strips every keyword that is not on an explicit technical whitelist, so free text that may
identify a patient ($SRC, $CELLS, $COM, $OP, $FIL, custom "patient" keywords) never leaves
this module (docs/rules.md, Bad input).

Tolerated quirks, each recorded as a note:
- FCS 3.x files whose HEADER and TEXT disagree on the DATA offsets: the TEXT offsets are
  used, as the FCS 3.1 standard (section 3.2.1) makes TEXT authoritative once the file
  is larger than the HEADER fields can express; if FlowIO still cannot read the data,
  the file is rejected.
- DATA end offset one byte past the data (a common writer bug, FlowIO
  ``ignore_offset_error``): the last byte is ignored.
- Several data sets in one file ($NEXTDATA, e.g. Beckman Coulter LMD files holding an
  FCS 2.0 and an FCS 3.0 copy): only the first data set is read.
- A $TIMESTEP that is not a number (seen in anonymised exports): the Time channel is left
  unscaled.
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import flowio
import numpy as np

from ckpk.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

# FCS TEXT keywords (as FlowIO stores them: lower case, without "$") that are kept.
# Everything else is dropped on reading. Each entry is technical, needed for gating or
# for describing the acquisition, and is not free text about the specimen:
#   tot, par          event and parameter counts
#   mode, datatype, byteord, nextdata   layout of the DATA segment
#   cyt               cytometer model (e.g. "FACSAria"); QC by instrument
#   timestep          scaling of the Time channel
#   spillover, spill  compensation matrix written by the acquisition software (needed)
#   vol               volume acquired (nL, FCS 3.1): volumetric absolute counts
# Per channel (see PER_CHANNEL_KEYWORDS): PnN name, PnS stain, PnR range, PnB bits,
# PnE amplification, PnG gain, PnV voltage, PnL excitation wavelength.
# Deliberately NOT kept: $DATE/$BTIM/$ETIM (a visit date identifies a person; ckpk
# uses the study day), $FIL (file names often carry patient names), $SRC, $CELLS,
# $COM, $OP, $SMNO, $PROJ, $EXP, $INST, $CYTSN and every vendor or custom keyword.
TECHNICAL_KEYWORDS: frozenset[str] = frozenset(
    {
        "tot",
        "par",
        "mode",
        "datatype",
        "byteord",
        "nextdata",
        "cyt",
        "timestep",
        "spillover",
        "spill",
        "vol",
    }
)
PER_CHANNEL_KEYWORDS: frozenset[str] = frozenset({"n", "s", "r", "b", "e", "g", "v", "l"})
_PER_CHANNEL = re.compile(r"^p(\d+)([a-z])$")

SUPPORTED_VERSIONS = ("2.0", "3.0", "3.1")
_HEADER_BYTES = 58


def is_technical_keyword(key: str) -> bool:
    """True when FCS keyword ``key`` (FlowIO form, e.g. ``"p3n"``) is on the whitelist."""
    key = key.lower().lstrip("$")
    if key in TECHNICAL_KEYWORDS:
        return True
    match = _PER_CHANNEL.match(key)
    return bool(match) and match.group(2) in PER_CHANNEL_KEYWORDS


def technical_keywords(text: dict[str, str]) -> dict[str, str]:
    """The whitelisted subset of FCS TEXT keywords; everything else is dropped.

    Free text may hold a patient's identity (docs/rules.md, "Bad input").
    """
    return {k: v for k, v in text.items() if is_technical_keyword(k)}


def _fail(name: str, reason: str) -> InputError:
    return InputError(f"{name}: {reason}")


def _check_header(path: Path, name: str) -> tuple[str, list[str]]:
    """Cheap checks before FlowIO: exists, not empty, FCS magic, version, sane offsets."""
    notes: list[str] = []
    if not path.exists():
        raise _fail(name, "file not found")
    if not path.is_file():
        raise _fail(name, "not a file")
    size = path.stat().st_size
    if size == 0:
        raise _fail(name, "the file is empty (0 bytes); copy it again from the cytometer")
    with path.open("rb") as handle:
        head = handle.read(_HEADER_BYTES)
    if not head.startswith(b"FCS"):
        raise _fail(
            name,
            "not an FCS file: it does not start with the 'FCS' header "
            "(export the tube from the acquisition software as FCS 2.0/3.0/3.1)",
        )
    if len(head) < _HEADER_BYTES:
        raise _fail(name, f"truncated: only {size} bytes, too short to hold an FCS header")
    version = head[3:6].decode("ascii", errors="replace")
    if version == "3.2":
        notes.append("FCS 3.2 file read with the FCS 3.1 rules")
    elif version not in SUPPORTED_VERSIONS:
        raise _fail(name, f"FCS version '{version}' is not supported (2.0, 3.0 or 3.1 are)")
    try:
        text_start = int(head[10:18])
        text_stop = int(head[18:26])
    except ValueError:
        raise _fail(name, "the FCS header is damaged (TEXT segment offsets unreadable)") from None
    if not 0 < text_start <= text_stop < size:
        raise _fail(
            name,
            f"truncated or damaged: the header places the keyword (TEXT) segment at bytes "
            f"{text_start}-{text_stop} but the file has {size} bytes",
        )
    return version, notes


def _data_set_count(path: Path, options: dict[str, bool]) -> int | None:
    """Number of data sets chained by $NEXTDATA (None when the chain cannot be followed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A path, not an open handle: FlowData closes the handle it reads, so a shared
            # handle fails at the second data set ("seek of closed file").
            sets = flowio.read_multiple_data_sets(
                str(path),
                only_text=True,
                ignore_offset_error=True,
                ignore_offset_discrepancy=options.get("ignore_offset_discrepancy", False),
            )
            return len(sets)
    except Exception:  # noqa: BLE001 - only used to word a note
        return None


def _data_past_end(path: Path) -> bool:
    """True when the HEADER or TEXT puts the last DATA byte at or past the end of the file.

    The offsets are inclusive (FCS 3.1 names the first and the last byte), so a last byte
    at offset ``size`` is one past the end: FlowIO's own truncation check lets that case
    through to a decoding error.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            stops = [int(handle.read(_HEADER_BYTES)[34:42])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text = flowio.FlowData(
                str(path), only_text=True, nextdata_offset=0, ignore_offset_discrepancy=True
            ).text
        stops.append(int(text.get("enddata", "0").strip() or 0))
    except Exception:  # noqa: BLE001 - only used to word a reason
        return False
    return any(stop >= size for stop in stops if stop > 0)


def _nextdata(text: dict[str, str]) -> int:
    try:
        return int(str(text.get("nextdata", "0")).strip() or 0)
    except ValueError:
        return 0


def _open_flowdata(path: Path, options: dict[str, bool]) -> tuple[flowio.FlowData, list[str]]:
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with path.open("rb") as handle:
            # nextdata_offset=0 reads the first data set of a multi-data-set file
            # instead of refusing it.
            data = flowio.FlowData(handle, nextdata_offset=0, **options)
    for warning in caught:
        if "byte order" in str(warning.message):
            notes.append("unusual $BYTEORD; the platform's native byte order was used")
    return data, notes


def _parse_flowdata(
    path: Path, name: str, only_text: bool = False, options: dict[str, bool] | None = None
) -> tuple[flowio.FlowData, list[str], dict[str, bool]]:
    """FlowData of the first data set, escalating FlowIO's tolerances one quirk at a time.

    Returns the data, notes on the tolerances used and the FlowIO options that worked.
    """
    options = dict(options or {})
    notes: list[str] = []
    for _attempt in range(4):
        try:
            data, warn_notes = _open_flowdata(path, {**options, "only_text": only_text})
            return data, notes + warn_notes, options
        except flowio.exceptions.DataOffsetDiscrepancyError:
            if options.get("ignore_offset_discrepancy"):
                break
            options["ignore_offset_discrepancy"] = True
            notes.append(
                "HEADER and TEXT disagree on where the event data lie; the TEXT offsets "
                "were used (FCS 3.1 §3.2.1)"
            )
        except flowio.exceptions.FCSParsingError as error:
            message = str(error)
            if "off by 1" in message and not options.get("ignore_offset_error"):
                options["ignore_offset_error"] = True
                notes.append(
                    "the DATA end offset points one byte past the data (a known writer "
                    "bug); the extra byte was ignored"
                )
                continue
            if "greater than file size" in message:
                raise _fail(
                    name,
                    "truncated: the event data should extend beyond the end of the file "
                    "(incomplete copy?)",
                ) from None
            if "Unable to determine the correct byte offsets" in message:
                raise _fail(
                    name,
                    "damaged: the size of the event data does not match the number of "
                    "channels and their bit widths",
                ) from None
            if "Invalid integer bit size" in message:
                raise _fail(
                    name,
                    "integer event data with a bit width other than 8, 16 or 32 ($PnB) "
                    "cannot be read",
                ) from None
            raise _fail(name, "unreadable FCS file (the TEXT or DATA segment is damaged)") from None
        except NotImplementedError:
            raise _fail(
                name,
                "holds histogram data ($MODE C or U), not list-mode events; export list mode",
            ) from None
        except KeyError as error:
            keyword = str(error).strip("'").upper()
            raise _fail(name, f"a required FCS keyword is missing (${keyword})") from None
        except (
            ValueError,
            TypeError,
            IndexError,
            EOFError,
            OSError,
            UnicodeError,
            MemoryError,
            struct.error,  # FlowIO unpacking event bytes whose length does not fit the layout
        ):
            if not only_text and _data_past_end(path):
                raise _fail(
                    name,
                    "truncated: the file ends before the last byte of the event data "
                    "(incomplete copy?)",
                ) from None
            raise _fail(
                name,
                "unreadable or damaged FCS file (the keywords or event data cannot be decoded)",
            ) from None
    raise _fail(
        name,
        "the HEADER and TEXT segments disagree on where the event data lie and neither "
        "location can be read",
    )


def _check_text(text: dict[str, str], name: str) -> None:
    """Layout keywords FlowIO relies on, checked before the event data are decoded."""
    mode = text.get("mode", "L").strip().upper()
    if mode != "L":
        raise _fail(name, f"holds histogram data ($MODE {mode}), not list-mode events")
    datatype = text.get("datatype", "").strip().upper()
    if datatype not in {"I", "F", "D"}:
        raise _fail(
            name,
            f"event data type $DATATYPE '{datatype}' is not supported "
            "(integer, float or double are)",
        )
    for key in ("par", "tot"):
        try:
            value = int(text.get(key, "").strip())
        except ValueError:
            raise _fail(name, f"${key.upper()} is missing or not a number") from None
        if value < 1:
            what = "declares no channels" if key == "par" else "holds no events"
            raise _fail(name, f"the file {what} (${key.upper()} = 0)")
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
        raise _fail(
            name,
            f"channel name(s) used by more than one channel: {listed}; a gating strategy "
            "cannot tell them apart",
        )


def _raw_text(path: Path) -> str:
    """The first data set's TEXT segment as FlowIO decodes it (UTF-8, else Latin-1)."""
    with path.open("rb") as handle:
        head = handle.read(_HEADER_BYTES)
        start, stop = int(head[10:18]), int(head[18:26])
        handle.seek(start)
        raw = handle.read(stop - start + 1)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("ISO-8859-1")


def _parse_text_empty_values(raw: str) -> dict[str, str] | None:
    """TEXT pairs read with every delimiter as a separator, so ``/$P3S//`` is an empty value.

    FCS forbids empty values and uses a doubled delimiter to escape the delimiter inside a
    value, but BD CellQuest (FACSCalibur) writes empty values; flowCore reads such files
    the same way (``read.FCS(emptyValue = TRUE)``).
    """
    if len(raw) < 2:
        return None
    delimiter = raw[0]
    body = raw[1:]
    if body.endswith(delimiter):
        body = body[:-1]
    tokens = body.split(delimiter)
    if len(tokens) % 2:
        return None
    keys = [t.replace("$", "").lower() for t in tokens[0::2]]
    return dict(zip(keys, tokens[1::2], strict=True))


def _channel_numbers_ok(text: dict[str, str], par: int) -> bool:
    numbers = {int(m.group(1)) for k in text if (m := re.match(r"^p(\d+)n$", k))}
    return numbers == set(range(1, par + 1))


def _rebuild_channels(data: flowio.FlowData, text: dict[str, str]) -> None:
    """Recompute FlowIO's per-channel metadata from a re-read TEXT (same rules as FlowIO)."""
    channels: dict[int, dict] = {}
    for number in range(1, data.channel_count + 1):
        decades, log0 = (float(x) for x in text.get(f"p{number}e", "0,0").split(","))
        if log0 == 0 and decades != 0:
            log0 = 1.0  # FCS 3.1 §3.3.28: a 0 offset on a log scale means 1
        channels[number] = {
            "pnn": text[f"p{number}n"],
            "pns": text.get(f"p{number}s", ""),
            "pne": (decades, log0),
            "png": float(text.get(f"p{number}g", "1") or 1),
            "pnr": float(text[f"p{number}r"]),
        }
    data.text = text
    data.channels = channels
    data.pnn_labels = [channels[n]["pnn"] for n in sorted(channels)]
    data.pns_labels = [channels[n]["pns"] for n in sorted(channels)]
    data.pnr_values = [channels[n]["pnr"] for n in sorted(channels)]
    data.fluoro_indices, data.scatter_indices, data.time_index = [], [], None
    for index, label in enumerate(data.pnn_labels):
        prefix = label.lower()[:4]
        if prefix in ("fsc-", "ssc-"):
            data.scatter_indices.append(index)
        elif label.lower() == "time":
            data.time_index = index
            channels[index + 1]["png"] = 1.0  # FlowIO: no amplifier gain on time
        elif prefix != "time":
            data.fluoro_indices.append(index)


def _check_channel_keywords(data: flowio.FlowData, path: Path, name: str) -> list[str]:
    """Every channel 1..$PAR must have its $PnN, or names and data columns would shift."""
    if _channel_numbers_ok(data.text, data.channel_count) and len(data.pnn_labels) == (
        data.channel_count
    ):
        return []
    try:
        text = _parse_text_empty_values(_raw_text(path))
    except (OSError, ValueError):
        text = None
    layout = ["par", "tot", "datatype", "byteord", "mode"] + [
        f"p{n}{k}" for n in range(1, data.channel_count + 1) for k in "br"
    ]
    if (
        text is not None
        and _channel_numbers_ok(text, data.channel_count)
        # The event data were decoded with the first reading of these keywords; they must
        # not change, or the events themselves would be wrong.
        and all(data.text.get(k) == text.get(k) for k in layout)
    ):
        try:
            _rebuild_channels(data, text)
        except (KeyError, ValueError):
            pass
        else:
            return [
                "empty keyword values (as CellQuest writes them) were read as empty, "
                "so that every channel keeps its name"
            ]
    raise _fail(
        name,
        "the channel names ($PnN) cannot be read for every channel, so names and data "
        "columns would not match; re-export the file",
    )


def _check_layout(data: flowio.FlowData, name: str) -> list[str]:
    notes: list[str] = []
    text = data.text
    if data.events is None:
        raise _fail(name, "the event data could not be decoded")
    expected = data.event_count * data.channel_count
    if len(data.events) != expected:
        raise _fail(
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
    message. The returned sample's ``metadata`` holds only :data:`TECHNICAL_KEYWORDS` and
    the per-channel keywords; its id and file names never come from $FIL.
    Raises :class:`~ckpk.errors.InputError` naming the file when it cannot be used.
    """
    import flowkit  # deferred: importing FlowKit costs ~2 s (benchmarks/README.md)

    path = Path(path)
    name = label if label is not None else path.name
    _version, notes = _check_header(path, name)
    head, text_notes, options = _parse_flowdata(path, name, only_text=True)
    _check_text(head.text, name)
    data, parse_notes, options = _parse_flowdata(path, name, options=options)
    notes += text_notes + parse_notes
    notes += _check_channel_keywords(data, path, name)
    notes += _check_layout(data, name)
    if _nextdata(data.text) != 0:
        count = _data_set_count(path, options)
        held = f"{count} data sets" if count else "more than one data set"
        notes.append(f"the file holds {held}; only the first was used")

    # Privacy: drop every non-technical keyword before FlowKit sees the TEXT, so neither
    # Sample.metadata nor Sample.id/original_filename/acquisition_date can carry it.
    data.text = technical_keywords(data.text)
    data.name = name
    try:
        sample = flowkit.Sample(data, sample_id=name)
    except (ValueError, TypeError, IndexError) as error:
        raise _fail(name, f"the event data could not be decoded ({type(error).__name__})") from None
    sample.current_filename = name
    sample.original_filename = name
    sample.acquisition_date = None
    raw = sample.get_events(source="raw")
    if raw.shape[0] != sample.event_count:
        raise _fail(name, "the number of events read does not match $TOT")
    if not np.isfinite(raw).all():
        notes.append("some event values are not finite numbers (NaN/inf); they fall in no gate")
    return sample, notes


def _channel_lookup(sample: flowkit.Sample) -> set[str]:
    labels = set(sample.pnn_labels) | {s for s in sample.pns_labels if s}
    # FlowJo writes "/" in channel names as "_" (FlowKit matches both).
    labels |= {label.replace("/", "_") for label in sample.pnn_labels}
    return labels


def _spill_channels(spill: str) -> list[str]:
    parts = [p.strip() for p in spill.split(",")]
    try:
        count = int(parts[0])
    except (ValueError, IndexError):
        return []
    return parts[1 : 1 + count]


def _spill_problem(spill: str) -> str | None:
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


def check_channels(sample: flowkit.Sample, strategy: flowkit.GatingStrategy) -> None:
    """Raise :class:`InputError` when the file lacks a channel the strategy gates on.

    A channel matches by PnN, by PnS, by FlowJo's spelling ("/" as "_"), or, for a
    dimension compensated with a strategy matrix, through that matrix's fluorochrome →
    detector mapping (GatingML 2.0 §5.2). Compensation is checked too: a strategy matrix
    or the file's own $SPILLOVER must name only channels the file has, the file's own must
    be complete and invertible, and a FlowJo strategy using the "Acquisition-defined"
    matrix needs the file to have one that lists every gated compensated channel.
    """
    from ckpk.flow.strategy import required_dimensions

    name = sample.id
    have = _channel_lookup(sample)
    fluoro = {sample.pnn_labels[i] for i in sample.fluoro_indices}
    missing: list[str] = []
    uses_file_spill = False
    for dim_id, comp_ref in required_dimensions(strategy):
        if comp_ref == "FCS":
            uses_file_spill = True
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
    if missing:
        raise _fail(
            name,
            f"missing channel(s) {', '.join(missing)} that the gating strategy needs; "
            f"the file has {', '.join(_describe_channels(sample))}",
        )
    used_matrices = {ref for _dim, ref in required_dimensions(strategy)} & set(
        strategy.comp_matrices
    )
    for matrix_id in sorted(used_matrices):
        matrix = strategy.comp_matrices[matrix_id]
        absent = [d for d in getattr(matrix, "detectors", []) if d not in fluoro]
        if absent:
            raise _fail(
                name,
                f"the strategy's compensation matrix '{matrix_id}' names channel(s) "
                f"{', '.join(absent)} that are not fluorescence channels of this file",
            )
    if uses_file_spill:
        spill = sample.metadata.get("spillover") or sample.metadata.get("spill")
        if spill:
            absent = [c for c in _spill_channels(spill) if c not in fluoro]
            if absent or not _spill_channels(spill):
                raise _fail(
                    name,
                    "the file's own spillover matrix ($SPILLOVER) is damaged or names "
                    f"channel(s) not in the file ({', '.join(absent) or 'unreadable header'})",
                )
            problem = _spill_problem(spill)
            if problem:
                raise _fail(
                    name, f"the file's own spillover matrix ($SPILLOVER) is damaged: {problem}"
                )
        _check_acquisition_defined(sample, strategy, spill)


def _check_acquisition_defined(
    sample: flowkit.Sample, strategy: flowkit.GatingStrategy, spill: str | None
) -> None:
    """A FlowJo strategy whose template uses the "Acquisition-defined" matrix gates on
    "Comp-" channels made from each file's own $SPILLOVER; FlowJo has no such channels for a
    file without one (or whose matrix lacks a gated channel), so the gates cannot be applied
    to it. (A GatingML "FCS" reference without a matrix means uncompensated, GatingML 2.0
    §5.2, and is only noted.)"""
    from ckpk.flow.strategy import file_spillover_channels

    needed = file_spillover_channels(strategy)
    if not needed:
        return
    if not spill:
        raise _fail(
            sample.id,
            "the FlowJo workspace compensates each file with its own spillover matrix "
            "('Acquisition-defined') but this file has no $SPILLOVER/SPILL keyword, so its "
            f"compensated channels ({', '.join(needed)}) do not exist",
        )
    in_spill = set(_spill_channels(spill))
    lookup = {label.replace("/", "_"): label for label in sample.pnn_labels}
    lookup.update({s: p for p, s in zip(sample.pnn_labels, sample.pns_labels, strict=False) if s})
    missing = [c for c in needed if c not in in_spill and lookup.get(c, c) not in in_spill]
    if missing:
        raise _fail(
            sample.id,
            "the FlowJo workspace compensates each file with its own spillover matrix "
            f"('Acquisition-defined') but this file's $SPILLOVER does not include the gated "
            f"channel(s) {', '.join(missing)}",
        )


def _describe_channels(sample: flowkit.Sample) -> Iterable[str]:
    for pnn, pns in zip(sample.pnn_labels, sample.pns_labels, strict=False):
        yield f"{pnn} ({pns})" if pns else pnn
