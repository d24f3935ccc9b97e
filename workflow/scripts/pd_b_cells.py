"""B-cell aplasia per subject and its Kaplan-Meier summary by dose (rule pd_b_cells)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pd import APLASIA_BY_DOSE_COLUMNS, B_CELL_COLUMNS, aplasia_by_dose, b_cell_table
from ckpk.pk.concentrations import read_concentrations
from ckpk.tables import write_tsv

sm = snakemake
table = b_cell_table(
    read_concentrations(sm.input.concentrations),
    read_subjects(sm.input.subjects),
    threshold=sm.params.threshold,
)
write_tsv(table, sm.output.b_cells, columns=B_CELL_COLUMNS, sort_by=["subject_id"])
write_tsv(aplasia_by_dose(table), sm.output.by_dose, columns=APLASIA_BY_DOSE_COLUMNS)
print(f"{len(table)} subjects with B-cell samples", file=sys.stderr)
