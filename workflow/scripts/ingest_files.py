"""Account for every input file; write the ledger, manifest and checked sheets."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from ckpk.inputs import LEDGER_COLUMNS, MANIFEST_COLUMNS, ingest  # noqa: E402
from ckpk.tables import write_tsv  # noqa: E402

out = snakemake.output  # noqa: F821
result = ingest(snakemake.params.input_dir, snakemake.params.name_pattern)  # noqa: F821
write_tsv(result.ledger, out.ledger, columns=LEDGER_COLUMNS, sort_by=["file"])
write_tsv(result.manifest, out.manifest, columns=MANIFEST_COLUMNS, sort_by=["file"])
counts = result.ledger.groupby(["kind", "status"]).size()
print(counts.to_string(), file=sys.stderr)
