"""The final ledger: ingest's verdicts updated by every stage's rejections."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import LEDGER_COLUMNS, merge_ledger
from ckpk.tables import read_tsv, write_tsv

inputs = snakemake.input
stages = [read_tsv(path) for name, path in inputs.items() if name != "ingest"]
ledger = merge_ledger(read_tsv(inputs.ingest), *stages)
write_tsv(ledger, snakemake.output[0], columns=LEDGER_COLUMNS, sort_by=["file"])
