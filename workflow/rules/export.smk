# Exports: CDISC SDTM PC/PP (TSV and SAS transport v5), the Excel workbook and Parquet
# copies, and the report's provenance pages (versions, configuration, browsable tables).


rule export_sdtm:
    input:
        concentrations=rules.pk_concentrations.output[0],
        nca=rules.pk_nca.output[0],
    output:
        pc=report(
            str(RESULTS / "sdtm" / "pc.tsv"),
            caption="../report/sdtm_pc.rst",
            category="Provenance",
            subcategory="SDTM",
        ),
        pp=report(
            str(RESULTS / "sdtm" / "pp.tsv"),
            caption="../report/sdtm_pp.rst",
            category="Provenance",
            subcategory="SDTM",
        ),
        pc_xpt=str(RESULTS / "sdtm" / "pc.xpt"),
        pp_xpt=str(RESULTS / "sdtm" / "pp.xpt"),
    log:
        str(LOGS / "export" / "sdtm.log"),
    benchmark:
        str(LOGS / "benchmarks" / "export_sdtm.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        study_id=config["sdtm"]["study_id"],
        # A function: "{subject_id}" in the template is not a Snakemake wildcard.
        usubjid=lambda wildcards: config["sdtm"]["usubjid"],
        end=config["nca"]["partial_auc_end"],
    script:
        "../scripts/export_sdtm.py"


rule export_tables:
    input:
        tables=exported_tables(),
    output:
        workbook=report(
            str(RESULTS / "ckpk_results.xlsx"),
            caption="../report/workbook.rst",
            category="Provenance",
            subcategory="Downloads",
        ),
        parquet=directory(str(RESULTS / "parquet")),
    log:
        str(LOGS / "export" / "tables.log"),
    benchmark:
        str(LOGS / "benchmarks" / "export_tables.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        end=config["nca"]["partial_auc_end"],
    script:
        "../scripts/export_tables.py"


rule report_provenance:
    input:
        tables=[path for path, _, _ in REPORT_TABLES],
    output:
        versions=report(
            str(RESULTS / "provenance" / "versions.tsv"),
            caption="../report/versions.rst",
            category="Provenance",
        ),
        config=report(
            str(RESULTS / "provenance" / "config.yaml"),
            caption="../report/config.rst",
            category="Provenance",
        ),
        pages=report(
            directory(str(RESULTS / "provenance" / "tables")),
            patterns=["{name}.html"],
            caption="../report/table_page.rst",
            category="PK",
            subcategory="Tables",
        ),
    log:
        str(LOGS / "export" / "provenance.log"),
    benchmark:
        str(LOGS / "benchmarks" / "report_provenance.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        # Functions: braces in config values (the USUBJID template) are not wildcards.
        config=lambda wildcards: config,
        tables=REPORT_TABLES,
    script:
        "../scripts/report_provenance.py"
