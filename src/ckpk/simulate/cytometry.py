"""Simulated FCS 3.1 files of a lyse/no-wash CAR T panel.

One tube per visit, acquired on a BD-like 3-laser instrument:

| $PnN           | $PnS       | what it marks                                   |
|----------------|------------|-------------------------------------------------|
| FSC-A, FSC-H   |            | size; -A vs -H separates doublets               |
| SSC-A          |            | granularity                                     |
| FITC-A         | CD4        | helper T cells                                  |
| PE-A           | CAR        | CAR detection reagent (anti-idiotype / CD19-Fc) |
| PerCP-Cy5-5-A  | CD3        | T cells                                         |
| PE-Cy7-A       | CD19       | B cells                                         |
| APC-A          | CD8        | cytotoxic T cells                               |
| BV421-A        | Viability  | fixable viability dye (dead cells bright)       |
| Time           |            | acquisition time                                |

Events are drawn from the subject's true blood (:func:`ckpk.simulate.trial.blood_state`):
debris, lymphocytes (T, B, NK; CAR T among the T cells), monocytes, granulocytes,
dead lymphocytes, doublets and — in single-platform tubes — counting beads. True
fluorescence is mixed by the spillover matrix stored in ``$SPILLOVER`` and detector
noise is added, so data must be compensated before gating (docs/rules.md).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

import flowio
import numpy as np

from ckpk.simulate.trial import BloodState

SCATTER = ["FSC-A", "FSC-H", "SSC-A"]
FLUOROCHROMES = ["FITC-A", "PE-A", "PerCP-Cy5-5-A", "PE-Cy7-A", "APC-A", "BV421-A"]
MARKERS = {
    "FITC-A": "CD4",
    "PE-A": "CAR",
    "PerCP-Cy5-5-A": "CD3",
    "PE-Cy7-A": "CD19",
    "APC-A": "CD8",
    "BV421-A": "Viability",
}
CHANNELS = SCATTER + FLUOROCHROMES + ["Time"]
RANGE = 262144.0

# Spillover (row: fluorochrome, column: detector), typical of a BD 3-laser setup.
SPILLOVER = np.array(
    [
        # FITC   PE     PerCP  PE-Cy7 APC    BV421
        [1.000, 0.220, 0.035, 0.005, 0.000, 0.000],  # FITC
        [0.012, 1.000, 0.140, 0.025, 0.002, 0.000],  # PE
        [0.000, 0.010, 1.000, 0.230, 0.040, 0.000],  # PerCP-Cy5.5
        [0.000, 0.020, 0.012, 1.000, 0.015, 0.000],  # PE-Cy7
        [0.000, 0.000, 0.015, 0.060, 1.000, 0.000],  # APC
        [0.030, 0.004, 0.000, 0.000, 0.000, 1.000],  # BV421
    ]
)

# Median true intensity of each marker on a positive cell, and of autofluorescence.
POSITIVE = {"CD4": 6000.0, "CAR": 3500.0, "CD3": 9000.0, "CD19": 7000.0, "CD8": 12000.0}
DEAD_DYE = 25000.0
AUTOFLUORESCENCE = 120.0
BEAD_INTENSITY = 40000.0
DETECTOR_NOISE_SD = 25.0  # electronic noise
PHOTON_NOISE = 1.5  # variance per unit of signal (photoelectron statistics)

# Fraction of acquired events that are not cells of interest.
DEBRIS_FRACTION = 0.08
DOUBLET_FRACTION = 0.02
DEAD_LYMPHOCYTE_FRACTION = 0.03  # of lymphocytes


@dataclass(frozen=True)
class TubeSetup:
    """How the tube was prepared: counting beads or not, blood volume."""

    blood_ul: float = 50.0
    beads_per_test: float | None = 50_000.0  # None: no counting beads (dual-platform)


# Populations: name -> (FSC median, FSC sd, SSC median, SSC sdlog, markers).
_SCATTER = {
    "lymphocyte": (55_000.0, 5_000.0, 12_000.0, 0.20),
    "dead_lymphocyte": (45_000.0, 6_000.0, 15_000.0, 0.25),
    "monocyte": (88_000.0, 8_000.0, 42_000.0, 0.15),
    "granulocyte": (105_000.0, 9_000.0, 115_000.0, 0.15),
    "bead": (20_000.0, 1_500.0, 70_000.0, 0.05),
}


def expected_events_per_ul(blood: BloodState, tube: TubeSetup) -> dict[str, float]:
    """Objects per µL of blood that reach the cytometer, by population."""
    lymphocytes = blood.lymphocytes
    per_ul = {
        "car_t": blood.car_t,
        "t_native": blood.t_native,
        "b": blood.b_cells,
        "nk": blood.nk_cells,
        "monocyte": blood.monocytes,
        "granulocyte": blood.granulocytes,
        "dead_lymphocyte": DEAD_LYMPHOCYTE_FRACTION * lymphocytes,
    }
    cells = sum(per_ul.values())
    per_ul["doublet"] = DOUBLET_FRACTION * cells
    per_ul["debris"] = DEBRIS_FRACTION / (1.0 - DEBRIS_FRACTION) * cells
    if tube.beads_per_test:
        per_ul["bead"] = tube.beads_per_test / tube.blood_ul
    return per_ul


def lymphocyte_gate_per_ul(blood: BloodState) -> float:
    """Objects per µL that fall in an FSC/SSC lymphocyte gate (live and dead).

    A dual-platform CBC lymphocyte count measures the same cells, so the simulated CBC
    is this value with the counter's own error.
    """
    return blood.lymphocytes * (1.0 + DEAD_LYMPHOCYTE_FRACTION)


def simulate_events(
    blood: BloodState, tube: TubeSetup, n_events: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, int]]:
    """Draw ``n_events`` events (rows) × :data:`CHANNELS` (columns), float32.

    Returns the event matrix and the number of events drawn per population.
    """
    per_ul = expected_events_per_ul(blood, tube)
    names = list(per_ul)
    p = np.array([per_ul[n] for n in names], dtype=float)
    counts = dict(zip(names, rng.multinomial(n_events, p / p.sum()).tolist(), strict=True))

    blocks = []
    for name in names:
        n = counts[name]
        if n:
            blocks.append(_population(name, n, rng))
    events = np.vstack(blocks) if blocks else np.zeros((0, len(CHANNELS) - 1))
    events = events[rng.permutation(len(events))]

    # Detection: spillover mixes the true fluorescence, then detector noise.
    # numpy's own loops, not BLAS (`@`): OpenBLAS threads spin after every call and took
    # the CPU of the simulator's other worker processes (two workers were slower than
    # one); the bytes written are the same.
    fl = np.einsum("ij,jk->ik", events[:, 3:], SPILLOVER)
    noise_sd = np.sqrt(DETECTOR_NOISE_SD**2 + PHOTON_NOISE * np.clip(fl, 0.0, None))
    fl = fl + rng.normal(0.0, 1.0, fl.shape) * noise_sd
    events[:, 3:] = fl
    events = np.clip(events, -RANGE / 2, RANGE - 1)
    # Acquisition time in units of 10 ms ($TIMESTEP 0.01), at a steady event rate.
    time = np.sort(rng.uniform(0.0, 6000.0, len(events)))
    data = np.column_stack([events, time]).astype(np.float32)
    return data, counts


def _scatter(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    fsc_mean, fsc_sd, ssc_median, ssc_sdlog = _SCATTER[name]
    fsc_a = rng.normal(fsc_mean, fsc_sd, n)
    fsc_h = fsc_a * rng.normal(0.85, 0.03, n)
    ssc_a = ssc_median * np.exp(rng.normal(0.0, ssc_sdlog, n))
    return np.column_stack([fsc_a, fsc_h, ssc_a])


def _marker(n: int, rng: np.random.Generator, median: float, sdlog: float = 0.45) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, sdlog, n))


def _population(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """True (pre-spillover) scatter and fluorescence for ``n`` events of ``name``."""
    if name == "doublet":
        # Two cells stuck together: twice the area, little more height.
        single = _scatter("lymphocyte", n, rng)
        fl = _autofluorescence(n, rng)
        fl[:, 2] = _marker(n, rng, POSITIVE["CD3"])
        single[:, 0] *= 1.85
        single[:, 1] = single[:, 0] / 1.85 * rng.normal(1.0, 0.05, n)
        return np.column_stack([single, fl])
    if name == "debris":
        fsc = 9_000.0 * np.exp(rng.normal(0.0, 0.5, n))
        ssc = 7_000.0 * np.exp(rng.normal(0.0, 0.7, n))
        scatter = np.column_stack([fsc, fsc * rng.normal(0.9, 0.08, n), ssc])
        fl = _autofluorescence(n, rng)
        fl[:, 5] = _marker(n, rng, DEAD_DYE / 3, 1.0)  # membrane fragments take up dye
        return np.column_stack([scatter, fl])
    if name == "bead":
        scatter = _scatter("bead", n, rng)
        fl = BEAD_INTENSITY * np.exp(rng.normal(0.0, 0.05, (n, len(FLUOROCHROMES))))
        return np.column_stack([scatter, fl])

    scatter_kind = {
        "monocyte": "monocyte",
        "granulocyte": "granulocyte",
        "dead_lymphocyte": "dead_lymphocyte",
    }.get(name, "lymphocyte")
    scatter = _scatter(scatter_kind, n, rng)
    fl = _autofluorescence(n, rng)
    if name in ("car_t", "t_native"):
        fl[:, 2] = _marker(n, rng, POSITIVE["CD3"])
        cd4 = rng.random(n) < (0.5 if name == "car_t" else 0.62)
        fl[cd4, 0] = _marker(int(cd4.sum()), rng, POSITIVE["CD4"])
        fl[~cd4, 4] = _marker(int((~cd4).sum()), rng, POSITIVE["CD8"])
        if name == "car_t":
            fl[:, 1] = _marker(n, rng, POSITIVE["CAR"], 0.5)
    elif name == "b":
        fl[:, 3] = _marker(n, rng, POSITIVE["CD19"])
    elif name == "monocyte":
        fl[:, 0] = _marker(n, rng, 900.0)  # monocytes are CD4 dim
    elif name == "dead_lymphocyte":
        fl[:, 5] = _marker(n, rng, DEAD_DYE)
        fl[:, 2] = _marker(n, rng, POSITIVE["CD3"] * 0.6)
    return np.column_stack([scatter, fl])


def _autofluorescence(n: int, rng: np.random.Generator) -> np.ndarray:
    return AUTOFLUORESCENCE * np.exp(rng.normal(0.0, 0.5, (n, len(FLUOROCHROMES))))


def spillover_keyword() -> str:
    """``$SPILLOVER`` value: n, detector names, then the matrix row by row."""
    values = ",".join(f"{v:.4f}" for v in SPILLOVER.ravel())
    return f"{len(FLUOROCHROMES)},{','.join(FLUOROCHROMES)},{values}"


def write_fcs(path: Path, data: np.ndarray, keywords: dict[str, str]) -> None:
    """Write an FCS 3.1 file with float data through FlowIO."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = array("f")
    flat.frombytes(np.ascontiguousarray(data, dtype="<f4").tobytes())
    metadata = {"$SPILLOVER": spillover_keyword(), "$TIMESTEP": "0.01"}
    for i, _channel in enumerate(CHANNELS, start=1):
        metadata[f"$P{i}R"] = "262144"
    metadata.update(keywords)
    with open(path, "wb") as handle:
        flowio.create_fcs(
            handle,
            flat,
            channel_names=CHANNELS,
            opt_channel_names=[MARKERS.get(c, "") for c in CHANNELS],
            metadata_dict=metadata,
        )
