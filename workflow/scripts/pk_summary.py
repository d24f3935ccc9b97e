"""Per dose level: parameter statistics, persistence at months 3/6/12 and its Kaplan-Meier
summary (rule pk_summary)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.inputs import read_subjects
from ckpk.pk.concentrations import car_t_profiles, read_concentrations
from ckpk.pk.persistence import PERSISTENCE_KM_COLUMNS, persistence_km
from ckpk.pk.summary import (
    PERSISTENCE_COLUMNS,
    SUMMARY_COLUMNS,
    dose_levels_of,
    persistence_at_months,
    summary_by_dose,
)
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
subjects = read_subjects(sm.input.subjects)
nca, fits = read_tsv(sm.input.nca), read_tsv(sm.input.fits)
summary = summary_by_dose(nca, fits, subjects, end=sm.params.end)
write_tsv(summary, sm.output.summary, columns=SUMMARY_COLUMNS)
concentrations = car_t_profiles(read_concentrations(sm.input.concentrations))
persistence = persistence_at_months(concentrations, subjects)
write_tsv(persistence, sm.output.persistence, columns=PERSISTENCE_COLUMNS)
km = persistence_km(nca, dose_levels_of(subjects))
write_tsv(km, sm.output.persistence_km, columns=PERSISTENCE_KM_COLUMNS)
