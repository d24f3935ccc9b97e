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
            subcategory="Population fit",
        ),
        subjects=report(
            str(RESULTS / "pk" / "population_subjects.tsv"),
            caption="../report/population_subjects.rst",
            category="PK",
            subcategory="Population fit",
        ),
        plots=report(
            directory(str(RESULTS / "pk" / "plots" / "population")),
            patterns=["{name}.png"],
            caption="../report/population_plot.rst",
            category="PK",
            subcategory="Population fit",
        ),
    log:
        str(LOGS / "pk" / "popfit.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_popfit.tsv")
    conda:
        "../envs/ckpk.yaml"
    # The 4 chains run on 4 virtual CPU devices, so the fit keeps 2 cores busy
    # (benchmarks/README.md, "Population fit"). Declared as one thread and run beside
    # the small PK jobs, it took longer: its chains and those jobs slowed each other.
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        end=config["nca"]["partial_auc_end"],
        analytes=config["population"]["analytes"],
        # An analyte whose readings are unchanged since the last run is taken from here
        # (ckpk.pk.population_cache): a new FCS file does not refit the qPCR analyte.
        cache=str(RESULTS / ".cache" / "popfit"),
    script:
        "../scripts/pk_popfit.py"
