"""Population fit per CAR T analyte, its tables and figures (rule pk_popfit)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.pk.population_io import run_popfit

sm = snakemake
run_popfit(
    sm.input.concentrations,
    sm.input.subjects,
    sm.output.fit,
    sm.output.subjects,
    sm.output.plots,
    end=sm.params.end,
    analytes=sm.params.analytes,
    cache_dir=sm.params.cache,
)
