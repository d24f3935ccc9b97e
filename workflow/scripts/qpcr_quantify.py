"""Plates → wells, standard curves and transgene copies/µg (rule qpcr_quantify)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import STAGE_LEDGER_COLUMNS, read_samples, read_subjects
from ckpk.qpcr import (
    CURVE_COLUMNS,
    CURVE_EXTRA_COLUMNS,
    CURVE_SORT_BY,
    TRANSGENE_COLUMNS,
    TRANSGENE_EXTRA_COLUMNS,
    TRANSGENE_SORT_BY,
    WELL_COLUMNS,
    WELL_EXTRA_COLUMNS,
    WELL_SORT_BY,
)
from ckpk.qpcr.stage import run_qpcr
from ckpk.tables import write_tsv

sm = snakemake
result = run_qpcr(
    list(zip(sm.input.plates, sm.params.labels, strict=True)),
    subjects=read_subjects(sm.input.subjects),
    samples_sheet=read_samples(sm.input.samples),
    name_pattern=sm.params.name_pattern,
    car_target=sm.params.car_target,
    reference_target=sm.params.reference_target,
    default_dna_ng=sm.params.dna_ng,
    acceptance=sm.params.acceptance,
    plot_dir=sm.output.plots,
    cq_range=tuple(sm.params.cq_range),
    max_unzipped_mb=sm.params.max_unzipped_mb,
    min_positive_replicates=sm.params.min_positive_replicates,
)
out = sm.output
write_tsv(result.wells, out.wells, columns=WELL_COLUMNS + WELL_EXTRA_COLUMNS, sort_by=WELL_SORT_BY)
write_tsv(
    result.curves, out.curves, columns=CURVE_COLUMNS + CURVE_EXTRA_COLUMNS, sort_by=CURVE_SORT_BY
)
write_tsv(
    result.transgene,
    out.transgene,
    columns=TRANSGENE_COLUMNS + TRANSGENE_EXTRA_COLUMNS,
    sort_by=TRANSGENE_SORT_BY,
)
write_tsv(result.ledger, out.ledger, columns=STAGE_LEDGER_COLUMNS, sort_by=["file"])
