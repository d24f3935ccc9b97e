# What the trial asks of the kinetics: B-cell aplasia, dose proportionality, exposure
# against clinical response, and one row per subject.


rule pd_b_cells:
    input:
        concentrations=rules.pk_concentrations.output[0],
        subjects=rules.ingest_sheets.output.subjects,
    output:
        b_cells=report(
            str(RESULTS / "pd" / "b_cells.tsv"),
            caption="../report/b_cells.rst",
            category="PD",
        ),
        by_dose=report(
            str(RESULTS / "pd" / "aplasia_by_dose.tsv"),
            caption="../report/aplasia_by_dose.rst",
            category="PD",
        ),
    log:
        str(LOGS / "pd" / "b_cells.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pd_b_cells.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        threshold=config["pd"]["b_cell_aplasia_below"],
    script:
        "../scripts/pd_b_cells.py"


rule pk_exposure_response:
    input:
        nca=rules.pk_nca.output[0],
        b_cells=rules.pd_b_cells.output.b_cells,
        subjects=rules.ingest_sheets.output.subjects,
        clinical=rules.ingest_sheets.output.clinical,
    output:
        proportionality=report(
            str(RESULTS / "pk" / "dose_proportionality.tsv"),
            caption="../report/dose_proportionality.rst",
            category="PK",
        ),
        exposure_response=report(
            str(RESULTS / "pk" / "exposure_response.tsv"),
            caption="../report/exposure_response.rst",
            category="PD",
        ),
        proportionality_plots=report(
            directory(str(RESULTS / "pk" / "plots" / "dose_proportionality")),
            patterns=["{name}.png"],
            caption="../report/dose_proportionality_plot.rst",
            category="PK",
            subcategory="Dose proportionality",
        ),
        response_plots=report(
            directory(str(RESULTS / "pk" / "plots" / "exposure_response")),
            patterns=["{name}.png"],
            caption="../report/exposure_response_plot.rst",
            category="PD",
            subcategory="Exposure by response",
        ),
    log:
        str(LOGS / "pk" / "exposure_response.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_exposure_response.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        end=config["nca"]["partial_auc_end"],
        figure_cache=str(RESULTS / ".cache" / "figures" / "pk_exposure_response"),
    script:
        "../scripts/pk_exposure_response.py"


rule pk_subjects:
    input:
        subjects=rules.ingest_sheets.output.subjects,
        nca=rules.pk_nca.output[0],
        fits=rules.pk_model_fit.output[0],
        population=rules.pk_popfit.output.subjects,
        b_cells=rules.pd_b_cells.output.b_cells,
        clinical=rules.ingest_sheets.output.clinical,
    output:
        report(
            str(RESULTS / "pk" / "subjects.tsv"),
            caption="../report/subjects.rst",
            category="PK",
        ),
    log:
        str(LOGS / "pk" / "subjects.log"),
    benchmark:
        str(LOGS / "benchmarks" / "pk_subjects.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        end=config["nca"]["partial_auc_end"],
    script:
        "../scripts/pk_subjects.py"
