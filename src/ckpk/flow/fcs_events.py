"""The event values of an FCS file, read from the DATA segment with numpy.

FlowIO decodes the whole DATA segment into a Python list, FlowKit then copies it into a
float64 array and preprocesses every channel. Gating needs a few channels, so
:class:`FcsEvents` maps the DATA segment once and decodes a channel only when it is asked
for, with FlowIO's own rules, so that every value equals FlowIO's (``as_array``):

- integer data masked to the next power of 2 of ``$PnR`` when any channel stores more bits
  than its range needs (FlowIO's rule, channel by channel);
- the Time channel multiplied by ``$TIMESTEP``; ``$PnE`` log channels scaled as
  ``10 ** (decades * value / range) * log0``; other channels divided by a ``$PnG`` gain.

It also reads what FlowIO refuses: integer channels of any whole number of bytes up to 8
(24-bit data, as the Cytek xP5 writes it, is rejected by FlowIO as "non-standard").
:func:`data_layout` says where and how the values lie, or ``None`` when the segment is
not plainly readable (sizes that do not add up, an unusual ``$BYTEORD``); the file is then
decoded by FlowIO, whose errors give the rejection reasons (:mod:`ckpk.flow.fcs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The only $BYTEORD values FlowIO reads without a warning, and the numpy byte order of each.
_BYTE_ORDERS = {"1,2,3,4": "<", "1,2": "<", "4,3,2,1": ">", "2,1": ">"}
OFF_BY_ONE_NOTE = (
    "the DATA end offset points one byte past the data (a known writer bug); the extra "
    "byte was ignored"
)


@dataclass(frozen=True)
class DataLayout:
    """Where the event values lie and how each channel is stored."""

    start: int  # first byte of the DATA segment
    events: int  # $TOT
    widths: tuple[int, ...]  # bytes per value, channel by channel
    kind: str  # "i" (unsigned integer), "f" or "d"
    order: str  # "<" or ">"
    masks: tuple[int | None, ...]  # integer bit mask per channel (None: none)
    off_by_one: bool  # the DATA end offset was one byte past the data


def _next_power_of_2(value: int) -> int:
    return 1 if value == 0 else 2 ** (value - 1).bit_length()


def _integer_masks(text: Mapping[str, str], widths: Sequence[int]) -> tuple[int | None, ...]:
    """FlowIO masks every channel with (next power of 2 of $PnR) - 1 when any channel holds
    more bits than its range; otherwise no channel is masked."""
    ranges = [_next_power_of_2(int(text[f"p{n}r"])) for n in range(1, len(widths) + 1)]
    if any(2 ** (8 * w) > r for w, r in zip(widths, ranges, strict=True)):
        return tuple(r - 1 for r in ranges)
    return tuple(None for _ in widths)


def data_layout(
    header: Mapping[str, object], text: Mapping[str, str], file_size: int, version: str
) -> DataLayout | None:
    """The layout of the first data set's DATA segment, or None when it is not plainly
    readable (then FlowIO decodes it and names what is wrong).

    ``header`` is FlowIO's parsed HEADER and ``text`` the TEXT keywords before the privacy
    whitelist. The DATA offsets are FlowIO's: the HEADER's for FCS 2.0, else the TEXT's.
    """
    try:
        order = _BYTE_ORDERS.get(text["byteord"])
        kind = text["datatype"].lower()
        par, tot = int(text["par"]), int(text["tot"])
        if version == "2.0":
            start, stop = int(header["data_start"]), int(header["data_stop"])
        else:
            start, stop = int(text["begindata"]), int(text["enddata"])
        if kind == "i":
            bits = [int(text[f"p{n}b"]) for n in range(1, par + 1)]
            if any(b % 8 or not 8 <= b <= 64 for b in bits):
                return None
            widths = tuple(b // 8 for b in bits)
            masks = _integer_masks(text, widths)
            if len(set(widths)) == 1 and widths[0] in (1, 2, 4):
                # FlowIO masks uniform widths within the integer type, which fails for a
                # mask wider than the type: let FlowIO speak for such a file.
                if any(m is not None and m >= 2 ** (8 * widths[0]) for m in masks):
                    return None
        elif kind in ("f", "d"):
            widths = (4 if kind == "f" else 8,) * par
            masks = (None,) * par
        else:
            return None
    except (KeyError, ValueError):
        return None
    if order is None or par < 1 or tot < 0 or start < 0:
        return None
    size = stop - start + 1
    expected = tot * sum(widths)
    off_by_one = size == expected + 1
    if size != expected and not off_by_one:
        return None
    if start + expected > file_size:
        return None
    return DataLayout(start, tot, widths, kind, order, masks, off_by_one)


_BLOCK = 1 << 16  # events per block when channels are turned into rows


def _uniform_dtype(layout: DataLayout) -> np.dtype | None:
    """The one numpy type of every value when all channels are stored alike, else None."""
    width = layout.widths[0]
    if any(w != width for w in layout.widths) or width not in (1, 2, 4, 8):
        return None
    return np.dtype(f"{layout.order}{'u' if layout.kind == 'i' else 'f'}{width}")


def _row_dtype(layout: DataLayout) -> np.dtype:
    """One event as a numpy record: a field per channel (bytes for odd integer widths)."""
    fields = []
    for number, width in enumerate(layout.widths):
        if layout.kind == "i":
            code = f"{layout.order}u{width}" if width in (1, 2, 4, 8) else ("u1", (width,))
        else:
            code = f"{layout.order}f{width}"
        fields.append((f"c{number}", code))
    return np.dtype(fields)


def _assemble(raw: np.ndarray, order: str) -> np.ndarray:
    """Unsigned integers from their bytes (``raw``: events x bytes), in byte order."""
    columns = raw if order == ">" else raw[:, ::-1]
    value = np.zeros(len(raw), dtype=np.uint64)
    for byte in range(raw.shape[1]):
        value = (value << np.uint64(8)) | columns[:, byte].astype(np.uint64)
    return value


@dataclass
class ChannelScale:
    """FlowIO's preprocessing of one channel (``FlowData.channels`` entry)."""

    decades: float
    log0: float
    range: float
    gain: float


class FcsEvents:
    """Preprocessed event values of one FCS data set, decoded channel by channel.

    Built from a :class:`DataLayout` (the DATA segment is mapped, not read) or from the
    flat values FlowIO decoded. ``column(i)`` equals column ``i`` of FlowIO's
    ``FlowData.as_array(preprocess=True)`` bit for bit.
    """

    def __init__(
        self,
        scales: Sequence[ChannelScale],
        time_index: int | None,
        time_step: float | None,
        layout: DataLayout | None = None,
        path: str | Path | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        self.scales = list(scales)
        self.time_index = time_index
        self.time_step = time_step
        self.layout = layout
        self._records = None
        if layout is not None:
            uniform = _uniform_dtype(layout)
            if uniform is not None:
                # All channels stored alike: the segment is one events x channels array.
                shape, dtype = (layout.events, len(self.scales)), uniform
                self._values = np.memmap(path, dtype, "r", layout.start, shape)
            else:
                shape, dtype = (layout.events,), _row_dtype(layout)
                self._records = np.memmap(path, dtype, "r", layout.start, shape)
            self.event_count = layout.events
        else:
            self._values = np.asarray(values).reshape(-1, len(self.scales))
            self.event_count = len(self._values)
        self._cache: dict[int, np.ndarray] = {}

    @property
    def channel_count(self) -> int:
        return len(self.scales)

    def _mask(self, values: np.ndarray, index: int) -> np.ndarray:
        layout = self.layout
        if layout is None or layout.kind != "i":
            return values
        mask = layout.masks[index]
        # A mask as wide as the stored integer keeps every bit.
        if mask is not None and mask < np.iinfo(values.dtype).max:
            values = np.bitwise_and(values, np.asarray(mask, dtype=values.dtype))
        return values

    def stored(self, index: int) -> np.ndarray:
        """Channel ``index`` as stored in the file (integer data masked as FlowIO masks it)."""
        if self._records is None:
            return self._mask(self._values[:, index], index)
        field = self._records[f"c{index}"]
        if field.ndim == 2:
            field = _assemble(np.asarray(field), self.layout.order)
        return self._mask(field, index)

    def _preprocess(self, values: np.ndarray, index: int) -> np.ndarray:
        """FlowIO's preprocessing of one channel's float64 values, operation for operation."""
        if index == self.time_index and self.time_step is not None:
            values = values * self.time_step
        scale = self.scales[index]
        if scale.decades > 0:
            values = (10 ** (scale.decades * values / scale.range)) * scale.log0
        if scale.gain != 1.0 and scale.gain != 0:
            values = values / scale.gain
        values.flags.writeable = False
        return values

    def column(self, index: int) -> np.ndarray:
        """Channel ``index`` as float64, preprocessed as FlowIO does (cached; read-only)."""
        cached = self._cache.get(index)
        if cached is None:
            cached = self._preprocess(np.array(self.stored(index), dtype=np.float64), index)
            self._cache[index] = cached
        return cached

    def prefetch(self, indices: Sequence[int]) -> None:
        """Decode several channels in one pass over the file (one row each, contiguous):
        a channel at a time would read the whole segment once per channel."""
        wanted = [i for i in dict.fromkeys(indices) if i not in self._cache]
        if len(wanted) < 2 or self._records is not None:
            return
        rows = np.empty((len(wanted), self.event_count))
        for start in range(0, self.event_count, _BLOCK):
            rows[:, start : start + _BLOCK] = self._values[start : start + _BLOCK, wanted].T
        for row, index in zip(rows, wanted, strict=True):
            if self.layout is not None and self.layout.masks[index] is not None:
                self._cache[index] = self.column(index)  # masked integers: channel alone
            else:
                self._cache[index] = self._preprocess(row, index)

    def columns(self, indices: Sequence[int]) -> np.ndarray:
        """Several channels as one float64 array (events x channels)."""
        if not indices:
            return np.empty((self.event_count, 0))
        return np.column_stack([self.column(i) for i in indices])

    def all_finite(self) -> bool:
        """True when no value is NaN or infinite after preprocessing (every channel)."""
        stored_checked = self._records is not None or self._values.dtype.kind != "f"
        if not stored_checked:  # one pass over every stored value
            for start in range(0, self.event_count, 16 * _BLOCK):
                if not np.isfinite(self._values[start : start + 16 * _BLOCK]).all():
                    return False
        for index, scale in enumerate(self.scales):
            plain = scale.decades <= 0 and scale.gain in (1.0, 0) and index != self.time_index
            if not plain and not np.isfinite(self.column(index)).all():
                return False
        return True

    def as_array(self) -> np.ndarray:
        """Every channel (events x channels), as FlowIO's ``as_array(preprocess=True)``."""
        return self.columns(list(range(self.channel_count)))

    def release(self) -> None:
        """Drop the decoded channels and the mapping of the file."""
        self._cache.clear()
        self._records = None
        self._values = np.empty((0, self.channel_count))
