"""Compile the gating strategy into the plan every gating job reads (rule flow_plan)."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from ckpk.flow.plan import write_plan
from ckpk.flow.plan_compile import as_plan
from ckpk.flow.strategy import load_strategy

sm = snakemake
plan = as_plan(load_strategy(sm.input.strategy, sm.params.sample_group or None))
write_plan(plan, sm.output.plan)
for note in plan.notes:
    print(note, file=sys.stderr)
if plan.fallback is None:
    print(f"{len(plan.gates)} gates compiled for ckpk's fast path", file=sys.stderr)
else:
    print(f"FlowKit's engine will gate: {plan.fallback}", file=sys.stderr)
