"""Generate the simulated demo trial (rule demo_simulate)."""

import shutil
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from ckpk.simulate import SimulationSettings, simulate_trial

out_dir = Path(snakemake.params.out_dir)
# Write beside the final folder and rename at the end, so an interrupted run never
# leaves a half-written demo that later runs would take for a complete one.
staging = out_dir.with_name(out_dir.name + ".partial")
shutil.rmtree(staging, ignore_errors=True)
settings = SimulationSettings(
    n_subjects=snakemake.params.subjects,
    seed=snakemake.params.seed,
    events_per_file=snakemake.params.events,
    workers=snakemake.threads,
)
print(simulate_trial(staging, settings), file=sys.stderr)
staging.rename(out_dir)
