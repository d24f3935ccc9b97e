"""Large FCS files for the benchmarks: the simulated CAR T panel widened to 16 channels.

The simulator's events (scatter, the six panel colours mixed by its $SPILLOVER, Time) get
six more fluorescence channels of autofluorescence and noise, spilling a little into each
other, so a file has the 16 channels of a real 3-laser panel and a 12 x 12 $SPILLOVER.
The file is written straight from numpy (FlowIO's writer takes a Python list, which at
16 million values needs gigabytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ckpk.simulate.cytometry import (
    CHANNELS,
    FLUOROCHROMES,
    MARKERS,
    SPILLOVER,
    TubeSetup,
    simulate_events,
)
from ckpk.simulate.trial import BloodState

EXTRA = ["BV510-A", "BV605-A", "BV711-A", "PE-CF594-A", "APC-R700-A", "BUV395-A"]


def _spillover(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    extra = np.eye(len(EXTRA)) + np.triu(rng.uniform(0.0, 0.08, (len(EXTRA),) * 2), 1)
    matrix = np.zeros((len(FLUOROCHROMES) + len(EXTRA),) * 2)
    matrix[: len(FLUOROCHROMES), : len(FLUOROCHROMES)] = SPILLOVER
    matrix[len(FLUOROCHROMES) :, len(FLUOROCHROMES) :] = extra
    return FLUOROCHROMES + EXTRA, matrix


def panel_events(n_events: int, seed: int = 7) -> tuple[np.ndarray, list[str], str]:
    """(events x 16 float32, channel names, $SPILLOVER value) of one simulated tube."""
    rng = np.random.default_rng(seed)
    blood = BloodState(
        car_t=80.0,
        t_native=900.0,
        b_cells=5.0,
        nk_cells=150.0,
        monocytes=450.0,
        granulocytes=4000.0,
    )
    data, _counts = simulate_events(blood, TubeSetup(), n_events, rng)
    detectors, matrix = _spillover(rng)
    true_extra = 60.0 * np.exp(rng.normal(0.0, 0.6, (n_events, len(EXTRA))))
    extra = true_extra @ matrix[len(FLUOROCHROMES) :, len(FLUOROCHROMES) :]
    extra += rng.normal(0.0, 25.0, extra.shape)
    events = np.column_stack([data[:, :-1], extra, data[:, -1:]]).astype(np.float32)
    names = CHANNELS[:-1] + EXTRA + ["Time"]
    spill = ",".join([str(len(detectors)), *detectors, *(f"{v:.4f}" for v in matrix.ravel())])
    return events, names, spill


def _text(keywords: dict[str, str]) -> bytes:
    return ("/" + "".join(f"{k}/{v}/" for k, v in keywords.items())).encode("ascii")


def write_fcs(path: Path, events: np.ndarray, names: list[str], spill: str) -> Path:
    """An FCS 3.1 file of float32 events (little-endian), with $SPILLOVER and $TIMESTEP."""
    n_events, n_channels = events.shape
    keywords = {
        "$BEGINANALYSIS": "0",
        "$ENDANALYSIS": "0",
        "$BEGINSTEXT": "0",
        "$ENDSTEXT": "0",
        "$BEGINDATA": "0",
        "$ENDDATA": "0",
        "$BYTEORD": "1,2,3,4",
        "$DATATYPE": "F",
        "$MODE": "L",
        "$NEXTDATA": "0",
        "$PAR": str(n_channels),
        "$TOT": str(n_events),
        "$SPILLOVER": spill,
        "$TIMESTEP": "0.01",
    }
    for number, name in enumerate(names, start=1):
        keywords.update(
            {
                f"$P{number}N": name,
                f"$P{number}S": MARKERS.get(name, ""),
                f"$P{number}B": "32",
                f"$P{number}E": "0,0",
                f"$P{number}R": "262144",
            }
        )
    size = n_events * n_channels * 4
    text = _text(keywords)
    for _ in range(3):  # the offsets' own digits change the TEXT length
        begin = 58 + len(text)
        keywords["$BEGINDATA"], keywords["$ENDDATA"] = str(begin), str(begin + size - 1)
        text = _text(keywords)
    begin = 58 + len(text)
    end = begin + size - 1
    header = b"FCS3.1    " + b"".join(
        str(v).rjust(8).encode() for v in (58, 57 + len(text), begin, end, 0, 0)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(header + text)
        handle.write(np.ascontiguousarray(events, dtype="<f4").tobytes())
    return path
