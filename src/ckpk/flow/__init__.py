"""Flow cytometry: FCS reading and checks, gating with FlowKit, absolute counts, QC plots.

The public API is listed in ``__all__``. Names are imported on first use, so that
``ckpk.flow.counts`` (pure pandas) does not pay the ~2 s FlowKit import.
"""

from __future__ import annotations

import importlib
from typing import Any

# The config keys that name gates (config/README.md "flow"), in the order they are reported,
# each with the role its gate plays in counting (ckpk.flow.counts). The workflow's rules
# import this list, so a new gate key is added here and nowhere else.
GATE_ROLES: dict[str, str] = {
    "car_gate": "car",
    "cd3_gate": "cd3",
    "bead_gate": "beads",
    "lymphocyte_gate": "lymphocytes",
    "b_cell_gate": "b_cells",
}
GATE_KEYS: tuple[str, ...] = tuple(GATE_ROLES)
REQUIRED_GATE_KEYS: tuple[str, ...] = ("car_gate", "cd3_gate")

_EXPORTS = {
    "read_fcs": "fcs",
    "check_channels": "fcs",
    "technical_keywords": "privacy",
    "TECHNICAL_KEYWORDS": "privacy",
    "load_strategy": "strategy",
    "resolve_gate": "strategy",
    "resolve_gates": "strategy",
    "gate_paths": "strategy",
    "gate_sample": "gating",
    "gate_events": "gating",
    "gate_files": "gating",
    "GatingOutcome": "gating",
    "GATE_COUNT_COLUMNS": "gating",
    "car_t_table": "counts",
    "CAR_T_COLUMNS": "counts",
    "plot_gates": "qc_plot",
}

__all__ = sorted([*_EXPORTS, "GATE_KEYS", "GATE_ROLES", "REQUIRED_GATE_KEYS"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ckpk.flow' has no attribute '{name}'")
    return getattr(importlib.import_module(f"ckpk.flow.{module}"), name)
