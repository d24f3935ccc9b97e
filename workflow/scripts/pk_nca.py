"""NCA per subject × analyte, PKNCA 0.12.1 rules (rule pk_nca)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.concentrations import car_t_profiles, read_concentrations
from ckpk.pk.nca import NCA_COLUMNS, nca_table
from ckpk.tables import write_tsv

sm = snakemake
table = nca_table(
    car_t_profiles(read_concentrations(sm.input.concentrations)),
    method=sm.params.method,
    end=sm.params.end,
    subjects=read_subjects(sm.input.subjects),
)
write_tsv(table, sm.output[0], columns=NCA_COLUMNS, sort_by=["subject_id", "analyte"])
