"""CDISC SDTM PC and PP datasets as TSV and SAS transport v5 (rule export_sdtm)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from ckpk.export.sdtm import PC_COLUMNS, PP_COLUMNS, Study, pc_domain, pp_domain, write_xpt
from ckpk.tables import read_tsv, write_tsv

sm = snakemake
study = Study(sm.params.study_id, sm.params.usubjid)
pc = pc_domain(read_tsv(sm.input.concentrations), study)
pp = pp_domain(read_tsv(sm.input.nca), study, sm.params.end)
write_tsv(pc, sm.output.pc, columns=PC_COLUMNS)
write_tsv(pp, sm.output.pp, columns=PP_COLUMNS)
write_xpt(pc, sm.output.pc_xpt, "PC")
write_xpt(pp, sm.output.pp_xpt, "PP")
print(f"PC {len(pc)} rows, PP {len(pp)} rows", file=sys.stderr)
