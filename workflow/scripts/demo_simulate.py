"""Generate the simulated demo trial (rule demo_simulate)."""

import shutil
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from ckpk.simulate import SimulationSettings, simulate_trial  # noqa: E402

out_dir = Path(snakemake.params.out_dir)  # noqa: F821
# Write beside the final folder and rename at the end, so an interrupted run never
# leaves a half-written demo that later runs would take for a complete one.
staging = out_dir.with_name(out_dir.name + ".partial")
shutil.rmtree(staging, ignore_errors=True)
settings = SimulationSettings(
    n_subjects=snakemake.params.subjects,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    events_per_file=snakemake.params.events,  # noqa: F821
    workers=snakemake.threads,  # noqa: F821
)
print(simulate_trial(staging, settings), file=sys.stderr)
staging.rename(out_dir)
