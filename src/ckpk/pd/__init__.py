"""Pharmacodynamics: what the CAR T cells do (B-cell aplasia) and how exposure goes with
the clinical response."""

from .b_cell_aplasia import (
    APLASIA_BY_DOSE_COLUMNS,
    B_CELL_COLUMNS,
    DEFAULT_APLASIA_BELOW,
    aplasia_by_dose,
    aplasia_profile,
    b_cell_table,
)

__all__ = [
    "APLASIA_BY_DOSE_COLUMNS",
    "B_CELL_COLUMNS",
    "DEFAULT_APLASIA_BELOW",
    "aplasia_by_dose",
    "aplasia_profile",
    "b_cell_table",
]
