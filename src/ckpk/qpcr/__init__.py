"""qPCR: instrument exports → wells → standard curves → transgene copies per µg DNA.

Public API:

- :func:`read_plate` — one export file (QuantStudio, Design & Analysis, StepOne/7500,
  Bio-Rad CFX, LightCycler 480, RDML) → the wells table (:data:`WELL_COLUMNS`);
  :func:`read_plates` reads many and returns the rejected files with their reasons;
- :func:`standard_curves` — per plate × target OLS fit and acceptance
  (:data:`CURVE_COLUMNS`, efficiency in percent);
- :func:`quantify` — per plate × sample copies/reaction and copies/µg with BLQ and
  flags (:data:`TRANSGENE_COLUMNS`);
- :func:`plot_standard_curve` — the QC plot of one curve.

Write the tables with :func:`ckpk.tables.write_tsv` using the ``*_COLUMNS`` lists (plus
the ``*_EXTRA_COLUMNS``) and the ``*_SORT_BY`` keys.
"""

from .curves import (
    CURVE_COLUMNS,
    CURVE_EXTRA_COLUMNS,
    CURVE_SORT_BY,
    DEFAULT_ACCEPTANCE,
    efficiency_pct,
    standard_curves,
)
from .plots import plot_standard_curve
from .quantify import (
    CELLS_PER_UG_DNA,
    DEFAULT_DNA_NG,
    TRANSGENE_COLUMNS,
    TRANSGENE_EXTRA_COLUMNS,
    TRANSGENE_SORT_BY,
    quantify,
    well_copies,
)
from .reader import read_plate, read_plates
from .wells import WELL_COLUMNS, WELL_EXTRA_COLUMNS, WELL_SORT_BY, normalise_task

__all__ = [
    "CELLS_PER_UG_DNA",
    "CURVE_COLUMNS",
    "CURVE_EXTRA_COLUMNS",
    "CURVE_SORT_BY",
    "DEFAULT_ACCEPTANCE",
    "DEFAULT_DNA_NG",
    "TRANSGENE_COLUMNS",
    "TRANSGENE_EXTRA_COLUMNS",
    "TRANSGENE_SORT_BY",
    "WELL_COLUMNS",
    "WELL_EXTRA_COLUMNS",
    "WELL_SORT_BY",
    "efficiency_pct",
    "normalise_task",
    "plot_standard_curve",
    "quantify",
    "read_plate",
    "read_plates",
    "standard_curves",
    "well_copies",
]
