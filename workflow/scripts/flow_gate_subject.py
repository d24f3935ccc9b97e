"""Gate one subject's FCS files (rule flow_gate_subject)."""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from ckpk.flow.stage import FLOW_LEDGER_COLUMNS, GATE_COUNTS_COLUMNS, gate_batch
from ckpk.tables import write_tsv

sm = snakemake
files = list(zip(sm.input.fcs, sm.params.labels, strict=True))
Path(sm.output.qc).mkdir(parents=True, exist_ok=True)
qc_dir = sm.output.qc if sm.params.qc_plots else None
counts, ledger = gate_batch(
    files, sm.input.strategy, sm.params.sample_group, qc_dir, plan_path=sm.input.plan
)
write_tsv(counts, sm.output.counts, columns=GATE_COUNTS_COLUMNS + ["notes"])
write_tsv(ledger, sm.output.ledger, columns=FLOW_LEDGER_COLUMNS, sort_by=["file"])
print(f"{len(files)} files, {len(ledger[ledger.status == 'rejected'])} rejected", file=sys.stderr)
