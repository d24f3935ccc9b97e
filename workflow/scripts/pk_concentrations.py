"""Flow and qPCR results → the long concentrations table (rule pk_concentrations)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.concentrations import CONCENTRATION_COLUMNS, build_concentrations
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
wells = read_tsv(sm.input.wells)
plate_files = dict(zip(wells["plate"], wells["source_file"], strict=False)) if len(wells) else {}
table = build_concentrations(
    read_tsv(sm.input.car_t),
    read_tsv(sm.input.transgene),
    read_subjects(sm.input.subjects),
    plate_files,
)
write_tsv(
    table, sm.output[0], columns=CONCENTRATION_COLUMNS, sort_by=["subject_id", "analyte", "day"]
)
print(table.groupby("analyte")["blq"].agg(["size", "sum"]).to_string(), file=sys.stderr)
