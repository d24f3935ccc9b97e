# ckpk: CAR T-cell cellular kinetics from instrument files to PK tables.
# Wiring only: each stage is a file in workflow/rules/, its logic is in src/ckpk.
from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/qpcr.smk"
include: "workflow/rules/pk.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
