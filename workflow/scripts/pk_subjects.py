"""One row per subject: the table an analyst opens first (rule pk_subjects)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.parameters import partial_auc_column
from ckpk.pk.subject_summary import subject_summary
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
table = subject_summary(
    read_subjects(sm.input.subjects),
    read_tsv(sm.input.nca),
    read_tsv(sm.input.fits),
    read_tsv(sm.input.b_cells),
    read_tsv(sm.input.clinical, text_columns=["value", "endpoint", "subject_id"]),
    partial_auc=partial_auc_column(sm.params.end),
    population=read_tsv(sm.input.population),
)
write_tsv(table, sm.output[0], sort_by=["subject_id"])
