"""Expansion / contraction / persistence model per subject × analyte (rule pk_model_fit)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.pk.concentrations import car_t_profiles, read_concentrations
from ckpk.pk.model import fit_table
from ckpk.pk.parameters import model_fit_columns
from ckpk.tables import write_tsv

sm = snakemake
concentrations = car_t_profiles(read_concentrations(sm.input.concentrations))
table = fit_table(concentrations, end=sm.params.end)
columns = model_fit_columns(sm.params.end)  # auc_0_<end>
write_tsv(table, sm.output[0], columns=columns, sort_by=["subject_id", "analyte"])
print(f"{int(table['converged'].sum())} of {len(table)} fits converged", file=sys.stderr)
