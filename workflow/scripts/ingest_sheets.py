"""The checked subject, sample and clinical sheets (rule ingest_sheets)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import CLINICAL_COLUMNS, SAMPLE_COLUMNS, SUBJECT_COLUMNS, load_sheets
from ckpk.tables import write_tsv

sm = snakemake
sheets = load_sheets(sm.params.input_dir)
write_tsv(sheets.subjects, sm.output.subjects, columns=SUBJECT_COLUMNS, sort_by=["subject_id"])
write_tsv(sheets.samples, sm.output.samples, columns=SAMPLE_COLUMNS, sort_by=["sample"])
write_tsv(
    sheets.clinical,
    sm.output.clinical,
    columns=CLINICAL_COLUMNS,
    sort_by=["subject_id", "endpoint", "day"],
)
for name, reason in sheets.rejections.items():
    print(f"{name}: rejected: {reason}", file=sys.stderr)
