"""Model-fit plot per subject × analyte and a spaghetti plot per analyte (rule pk_plots)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.concentrations import read_concentrations
from ckpk.report.figure_cache import FigureCache
from ckpk.report.pk_figures import draw_pk_figures
from ckpk.tables import read_tsv

sm = snakemake
cache = FigureCache(sm.params.figure_cache)
written = draw_pk_figures(
    read_concentrations(sm.input.concentrations),
    read_tsv(sm.input.nca),
    read_tsv(sm.input.fits),
    read_subjects(sm.input.subjects),
    fits_dir=sm.output.fits,
    spaghetti_dir=sm.output.spaghetti,
    cache=cache,
)
cache.prune()
print(f"{len(written)} figures: {cache.summary()}", file=sys.stderr)
