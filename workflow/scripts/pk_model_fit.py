"""Expansion / contraction / persistence model per subject × analyte (rule pk_model_fit)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.pk.concentrations import car_t_profiles, read_concentrations
from ckpk.pk.model import MODEL_FIT_COLUMNS, fit_table
from ckpk.tables import write_tsv

sm = snakemake
concentrations = car_t_profiles(read_concentrations(sm.input.concentrations))
table = fit_table(concentrations, end=sm.params.end)
write_tsv(table, sm.output[0], columns=MODEL_FIT_COLUMNS, sort_by=["subject_id", "analyte"])
print(f"{int(table['converged'].sum())} of {len(table)} fits converged", file=sys.stderr)
