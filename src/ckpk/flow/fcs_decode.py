"""Decoding an FCS file with FlowIO, tolerating the quirks of real cytometer writers.

FlowIO (the reader under FlowKit) does the byte-level work; this module decides which of
its tolerances to use and turns its errors into reasons a lab scientist understands.
Tolerated quirks, each recorded as a note on the file:

- FCS 3.x files whose HEADER and TEXT disagree on the DATA offsets: the TEXT offsets are
  used, as the FCS 3.1 standard (section 3.2.1) makes TEXT authoritative once the file
  is larger than the HEADER fields can express; if FlowIO still cannot read the data,
  the file is rejected.
- DATA end offset one byte past the data (a common writer bug, FlowIO
  ``ignore_offset_error``): the last byte is ignored.
- Several data sets in one file ($NEXTDATA, e.g. Beckman Coulter LMD files holding an
  FCS 2.0 and an FCS 3.0 copy): only the first data set is read.
- Empty keyword values (BD CellQuest): read as empty, so every channel keeps its name.
"""

from __future__ import annotations

import re
import struct
import warnings
from pathlib import Path

import flowio

from ckpk.errors import InputError

HEADER_BYTES = 58  # the fixed-width FCS HEADER: version and segment offsets

# FlowIO's parsing errors that mean the file cannot be read, by a fragment of the message.
_PARSING_REASONS = (
    (
        "greater than file size",
        "truncated: the event data should extend beyond the end of the file (incomplete copy?)",
    ),
    (
        "Unable to determine the correct byte offsets",
        "damaged: the size of the event data does not match the number of "
        "channels and their bit widths",
    ),
    (
        "Invalid integer bit size",
        "integer event data with a bit width other than 8, 16 or 32 ($PnB) cannot be read",
    ),
)
# What decoding raises on bytes that do not fit the layout the TEXT declares.
_DECODING_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    EOFError,
    OSError,
    UnicodeError,
    MemoryError,
    struct.error,  # FlowIO unpacking event bytes whose length does not fit the layout
)


def file_error(name: str, reason: str) -> InputError:
    """The error that rejects file ``name``: ``"<name>: <reason>"``."""
    return InputError(f"{name}: {reason}")


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
            stops = [int(handle.read(HEADER_BYTES)[34:42])]
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


def data_set_notes(data: flowio.FlowData, path: Path, options: dict[str, bool]) -> list[str]:
    """A note when the file chains further data sets after the one read ($NEXTDATA)."""
    if _nextdata(data.text) == 0:
        return []
    count = _data_set_count(path, options)
    held = f"{count} data sets" if count else "more than one data set"
    return [f"the file holds {held}; only the first was used"]


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


def parse_flowdata(
    path: Path, name: str, only_text: bool = False, options: dict[str, bool] | None = None
) -> tuple[flowio.FlowData, list[str], dict[str, bool]]:
    """FlowData of the first data set, escalating FlowIO's tolerances one quirk at a time.

    Returns the data, notes on the tolerances used and the FlowIO options that worked.
    Raises :class:`InputError` naming the file when no tolerance makes it readable.
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
            if "off by 1" in str(error) and not options.get("ignore_offset_error"):
                options["ignore_offset_error"] = True
                notes.append(
                    "the DATA end offset points one byte past the data (a known writer "
                    "bug); the extra byte was ignored"
                )
                continue
            raise file_error(name, _parsing_reason(str(error))) from None
        except NotImplementedError:
            raise file_error(
                name,
                "holds histogram data ($MODE C or U), not list-mode events; export list mode",
            ) from None
        except KeyError as error:
            keyword = str(error).strip("'").upper()
            raise file_error(name, f"a required FCS keyword is missing (${keyword})") from None
        except _DECODING_ERRORS:
            raise file_error(name, _decoding_reason(path, only_text)) from None
    raise file_error(
        name,
        "the HEADER and TEXT segments disagree on where the event data lie and neither "
        "location can be read",
    )


def _parsing_reason(message: str) -> str:
    """Why FlowIO refused the file, from its FCSParsingError message."""
    for fragment, reason in _PARSING_REASONS:
        if fragment in message:
            return reason
    return "unreadable FCS file (the TEXT or DATA segment is damaged)"


def _decoding_reason(path: Path, only_text: bool) -> str:
    """Why decoding failed: a truncated copy when the data run past the end of the file."""
    if not only_text and _data_past_end(path):
        return "truncated: the file ends before the last byte of the event data (incomplete copy?)"
    return "unreadable or damaged FCS file (the keywords or event data cannot be decoded)"


def _raw_text(path: Path) -> str:
    """The first data set's TEXT segment as FlowIO decodes it (UTF-8, else Latin-1)."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_BYTES)
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


def check_channel_names(data: flowio.FlowData, path: Path, name: str) -> list[str]:
    """Every channel 1..$PAR must have its $PnN, or names and data columns would shift.

    Names lost to empty keyword values (BD CellQuest) are recovered by re-reading the TEXT,
    with a note; otherwise :class:`InputError` naming the file is raised.
    """
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
    raise file_error(
        name,
        "the channel names ($PnN) cannot be read for every channel, so names and data "
        "columns would not match; re-export the file",
    )
