"""Dose proportionality and exposure against clinical response, with plots
(rule pk_exposure_response)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pd.exposure_response import (
    EXPOSURE_RESPONSE_COLUMNS,
    exposure_response,
    exposure_table,
)
from ckpk.pk.dose_proportionality import DOSE_PROPORTIONALITY_COLUMNS, dose_proportionality
from ckpk.pk.parameters import partial_auc_column
from ckpk.report.figure_cache import FigureCache
from ckpk.report.pd_plots import draw_pd_figures
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
auc = partial_auc_column(sm.params.end)
nca, subjects = read_tsv(sm.input.nca), read_subjects(sm.input.subjects)
clinical = read_tsv(sm.input.clinical, text_columns=["value", "endpoint", "subject_id"])
proportionality = dose_proportionality(nca, subjects, ("cmax", auc))
write_tsv(proportionality, sm.output.proportionality, columns=DOSE_PROPORTIONALITY_COLUMNS)
exposures = exposure_table(nca, read_tsv(sm.input.b_cells), partial_auc=auc)
table = exposure_response(clinical, exposures)
write_tsv(table, sm.output.exposure_response, columns=EXPOSURE_RESPONSE_COLUMNS)
cache = FigureCache(sm.params.figure_cache)
figures = draw_pd_figures(
    nca,
    subjects,
    proportionality,
    clinical,
    exposures,
    sm.output.proportionality_plots,
    sm.output.response_plots,
    cache=cache,
)
cache.prune()
print(f"{len(figures)} figures: {cache.summary()}", file=sys.stderr)
