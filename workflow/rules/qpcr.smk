# qPCR: every plate export → wells, standard curves, transgene copies/µg DNA.


rule qpcr_quantify:
    input:
        plates=qpcr_plate_files,
        subjects=rules.ingest_sheets.output.subjects,
        samples=rules.ingest_sheets.output.samples,
    output:
        wells=str(RESULTS / "qpcr" / "wells.tsv"),
        curves=report(
            str(RESULTS / "qpcr" / "standard_curves.tsv"),
            caption="../report/standard_curves.rst",
            category="qPCR",
        ),
        transgene=report(
            str(RESULTS / "qpcr" / "transgene.tsv"),
            caption="../report/transgene.rst",
            category="qPCR",
        ),
        ledger=str(RESULTS / "qpcr" / "ledger.tsv"),
        plots=report(
            directory(str(RESULTS / "qpcr" / "curves")),
            patterns=["{name}.png"],
            caption="../report/standard_curve_plot.rst",
            category="QC",
            subcategory="qPCR standard curves",
        ),
    log:
        str(LOGS / "qpcr_quantify.log"),
    benchmark:
        str(LOGS / "benchmarks" / "qpcr_quantify.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        labels=qpcr_plate_labels,
        name_pattern=config["sample_name_pattern"],
        car_target=config["qpcr"]["car_target"],
        reference_target=config["qpcr"]["reference_target"],
        dna_ng=config["qpcr"]["dna_ng"],
        acceptance=config["qpcr"]["acceptance"],
        cq_range=(
            config["qpcr"]["plausible_cq"]["min"],
            config["qpcr"]["plausible_cq"]["max"],
        ),
        max_unzipped_mb=config["qpcr"]["max_unzipped_mb"],
        min_positive_replicates=config["qpcr"]["min_positive_replicates"],
    script:
        "../scripts/qpcr_quantify.py"
