"""Gate counts with identity and CAR T cells per file (rule flow_car_t)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from ckpk.flow.counts import CAR_T_COLUMNS
from ckpk.flow.stage import (
    FLOW_LEDGER_COLUMNS,
    GATE_COUNTS_COLUMNS,
    load_plan,
    summarise_flow,
)
from ckpk.flow.strategy import resolve_gates
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
counts = [read_tsv(p, text_columns=["notes"]) for p in sm.input.counts]
counts = pd.concat(counts, ignore_index=True) if counts else pd.DataFrame(columns=["file"])
ledger = [read_tsv(p) for p in sm.input.ledgers]
ledger = pd.concat(ledger, ignore_index=True) if ledger else pd.DataFrame()
plan = load_plan(sm.input.strategy, sm.params.sample_group or None, sm.input.plan)
gates = resolve_gates(plan, sm.params.gates)
gate_counts, car_t = summarise_flow(
    counts, read_tsv(sm.input.manifest), gates, sm.params.lloq_events
)
write_tsv(gate_counts, sm.output.gate_counts, columns=GATE_COUNTS_COLUMNS, sort_by=["file"])
write_tsv(car_t, sm.output.car_t, columns=CAR_T_COLUMNS, sort_by=["file"])
write_tsv(ledger, sm.output.ledger, columns=FLOW_LEDGER_COLUMNS, sort_by=["file"])
