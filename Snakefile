# ckpk: CAR T-cell cellular kinetics from instrument files to PK tables.
# Wiring only: each stage is a file in workflow/rules/, its logic is in src/ckpk.
import os

from snakemake.utils import min_version

min_version("8.20")


# The default config sits beside this file, whatever folder snakemake is run from.
configfile: os.path.join(workflow.current_basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/qpcr.smk"
include: "workflow/rules/pk.smk"
include: "workflow/rules/popfit.smk"
include: "workflow/rules/pd.smk"
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


onsuccess:
    print_run_summary(failed=False)


onerror:
    print_run_summary(failed=True)
