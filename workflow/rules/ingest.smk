# Ingest: the demo trial when needed, then every input file accounted for.


# A checkpoint: the ingest rules list the demo's files once it exists, so the run that
# generates the demo records the same inputs and params as every later run, and the
# first re-run after it has nothing to do.
checkpoint demo_simulate:
    output:
        str(DEMO_DIR / "subjects.tsv"),
    log:
        str(LOGS / "demo_simulate.log"),
    benchmark:
        str(LOGS / "benchmarks" / "demo_simulate.tsv")
    # First: every other job waits for the demo except the strategy's plan, which can
    # run beside the ingest jobs after it.
    priority: 10
    conda:
        "../envs/ckpk.yaml"
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        out_dir=lambda wildcards, output: str(Path(output[0]).parent),
        subjects=config["demo"]["subjects"],
        seed=config["demo"]["seed"],
        events=config["demo"]["events"],
    script:
        "../scripts/demo_simulate.py"


rule ingest_sheets:
    # Apart from the file checkpoint, so that a new FCS file does not make the
    # stages that only need the sheets (qPCR) run again.
    input:
        sheet_inputs,
    output:
        subjects=str(RESULTS / "ingest" / "subjects.tsv"),
        samples=str(RESULTS / "ingest" / "samples.tsv"),
        clinical=str(RESULTS / "ingest" / "clinical.tsv"),
    log:
        str(LOGS / "ingest_sheets.log"),
    benchmark:
        str(LOGS / "benchmarks" / "ingest_sheets.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        input_dir=str(INPUT_DIR),
    script:
        "../scripts/ingest_sheets.py"


checkpoint ingest_files:
    input:
        ingest_inputs,
    output:
        manifest=str(RESULTS / "ingest" / "manifest.tsv"),
        ledger=str(RESULTS / "ingest" / "ledger.tsv"),
    log:
        str(LOGS / "ingest_files.log"),
    benchmark:
        str(LOGS / "benchmarks" / "ingest_files.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        input_dir=str(INPUT_DIR),
        name_pattern=config["sample_name_pattern"],
        listing=input_listing,
    script:
        "../scripts/ingest_files.py"


rule ledger_merge:
    input:
        ingest=rules.ingest_files.output.ledger,
        flow=str(RESULTS / "flow" / "ledger.tsv"),
        qpcr=str(RESULTS / "qpcr" / "ledger.tsv"),
    output:
        report(
            str(RESULTS / "ledger.tsv"),
            caption="../report/ledger.rst",
            category="Provenance",
        ),
    log:
        str(LOGS / "ledger_merge.log"),
    benchmark:
        str(LOGS / "benchmarks" / "ledger_merge.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/ledger_merge.py"
