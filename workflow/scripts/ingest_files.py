"""Account for every input file; write the ledger, manifest and checked sheets."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import LEDGER_COLUMNS, MANIFEST_COLUMNS, ingest
from ckpk.tables import write_tsv

out = snakemake.output
result = ingest(snakemake.params.input_dir, snakemake.params.name_pattern)
write_tsv(result.ledger, out.ledger, columns=LEDGER_COLUMNS, sort_by=["file"])
write_tsv(result.manifest, out.manifest, columns=MANIFEST_COLUMNS, sort_by=["file"])
counts = result.ledger.groupby(["kind", "status"]).size()
print(counts.to_string(), file=sys.stderr)
