"""NCA per subject × analyte, PKNCA 0.12.1 rules (rule pk_nca)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.concentrations import car_t_profiles, read_concentrations
from ckpk.pk.nca import nca_table
from ckpk.pk.parameters import nca_columns
from ckpk.tables import write_tsv

sm = snakemake
table = nca_table(
    car_t_profiles(read_concentrations(sm.input.concentrations)),
    method=sm.params.method,
    end=sm.params.end,
    subjects=read_subjects(sm.input.subjects),
)
columns = nca_columns(sm.params.end)  # auc_0_<end>
write_tsv(table, sm.output[0], columns=columns, sort_by=["subject_id", "analyte"])
