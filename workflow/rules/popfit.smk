# Population kinetics: one hierarchical Bayesian fit of the Stein 2019 model per CAR T
# analyte (docs/rules.md, "Population kinetics").


rule pk_popfit:
    input:
        concentrations=rules.pk_concentrations.output[0],
        subjects=rules.ingest_sheets.output.subjects,
    output:
        fit=report(
            str(RESULTS / "pk" / "population_fit.tsv"),
            caption="../report/population_fit.rst",
            category="PK",
        ),
        subjects=report(
            str(RESULTS / "pk" / "population_subjects.tsv"),
            caption="../report/population_subjects.rst",
            category="PK",
        ),
        plots=report(
            directory(str(RESULTS / "pk" / "plots" / "population")),
            patterns=["{name}.png"],
            caption="../report/population_plot.rst",
            category="PK",
        ),
    params:
        end=config["nca"]["partial_auc_end"],
    # The 4 chains run on 4 virtual CPU devices, so the fit keeps 2 cores busy; about 30 s
    # per analyte of the 18-subject demo (benchmarks/README.md).
    threads: 2
    resources:
        mem_mb=2000,
    log:
        str(LOGS / "pk" / "popfit.log"),
    script:
        "../scripts/pk_popfit.py"
