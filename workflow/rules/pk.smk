# PK: the long concentrations table, NCA, kinetic-model fits, dose-level summary, plots.


rule pk_concentrations:
    input:
        car_t=rules.flow_car_t.output.car_t,
        transgene=rules.qpcr_quantify.output.transgene,
        wells=rules.qpcr_quantify.output.wells,
        subjects=rules.ingest_sheets.output.subjects,
    output:
        report(
            str(RESULTS / "pk" / "concentrations.tsv"),
            caption="../report/concentrations.rst",
            category="PK",
        ),
    log:
        str(LOGS / "pk" / "concentrations.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_concentrations.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/pk_concentrations.py"


rule pk_nca:
    input:
        concentrations=rules.pk_concentrations.output[0],
        subjects=rules.ingest_sheets.output.subjects,
    output:
        report(
            str(RESULTS / "pk" / "nca.tsv"), caption="../report/nca.rst", category="PK"
        ),
    log:
        str(LOGS / "pk" / "nca.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_nca.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        method=config["nca"]["auc_method"],
        end=config["nca"]["partial_auc_end"],
    script:
        "../scripts/pk_nca.py"


rule pk_model_fit:
    input:
        concentrations=rules.pk_concentrations.output[0],
    output:
        report(
            str(RESULTS / "pk" / "model_fits.tsv"),
            caption="../report/model_fits.rst",
            category="PK",
        ),
    log:
        str(LOGS / "pk" / "model_fit.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_model_fit.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        end=config["nca"]["partial_auc_end"],
    script:
        "../scripts/pk_model_fit.py"


rule pk_summary:
    input:
        concentrations=rules.pk_concentrations.output[0],
        nca=rules.pk_nca.output[0],
        fits=rules.pk_model_fit.output[0],
        subjects=rules.ingest_sheets.output.subjects,
    output:
        summary=report(
            str(RESULTS / "pk" / "summary_by_dose.tsv"),
            caption="../report/summary_by_dose.rst",
            category="PK",
        ),
        persistence=report(
            str(RESULTS / "pk" / "persistence_by_dose.tsv"),
            caption="../report/persistence_by_dose.rst",
            category="PK",
        ),
        persistence_km=report(
            str(RESULTS / "pk" / "persistence_km.tsv"),
            caption="../report/persistence_km.rst",
            category="PK",
        ),
    log:
        str(LOGS / "pk" / "summary.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_summary.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        end=config["nca"]["partial_auc_end"],  # names the partial AUC column it reads
    script:
        "../scripts/pk_summary.py"


rule pk_plots:
    input:
        concentrations=rules.pk_concentrations.output[0],
        nca=rules.pk_nca.output[0],
        fits=rules.pk_model_fit.output[0],
        subjects=rules.ingest_sheets.output.subjects,
    output:
        fits=report(
            directory(str(RESULTS / "pk" / "plots" / "fits")),
            patterns=["{name}.png"],
            # Explained once in workflow.rst, not per figure (see flow.smk, flow QC).
            category="PK",
            subcategory="Model fit plots",
        ),
        spaghetti=report(
            directory(str(RESULTS / "pk" / "plots" / "spaghetti")),
            patterns=["{name}.png"],
            caption="../report/spaghetti_plot.rst",
            category="PK",
            subcategory="Profiles by dose level",
        ),
    log:
        str(LOGS / "pk" / "plots.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_plots.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        # Figures unchanged since the last run are copied from here (ckpk.report.figure_cache).
        figure_cache=str(RESULTS / ".cache" / "figures" / "pk_plots"),
    script:
        "../scripts/pk_plots.py"
