# Ingest: the demo trial when needed, then every input file accounted for.


# A checkpoint: the ingest rules list the demo's files once it exists, so the run that
# generates the demo records the same inputs and params as every later run, and the
# first re-run after it has nothing to do.
checkpoint demo_simulate:
    output:
        str(DEMO_DIR / "subjects.tsv"),
    params:
        out_dir=str(DEMO_DIR),
        subjects=config["demo"]["subjects"],
        seed=config["demo"]["seed"],
        events=config["demo"]["events"],
    log:
        str(LOGS / "demo_simulate.log"),
    threads: workflow.cores
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
    params:
        input_dir=str(INPUT_DIR),
    log:
        str(LOGS / "ingest_sheets.log"),
    script:
        "../scripts/ingest_sheets.py"


checkpoint ingest_files:
    input:
        ingest_inputs,
    output:
        manifest=str(RESULTS / "ingest" / "manifest.tsv"),
        ledger=str(RESULTS / "ingest" / "ledger.tsv"),
    params:
        input_dir=str(INPUT_DIR),
        name_pattern=config["sample_name_pattern"],
        listing=input_listing,
    log:
        str(LOGS / "ingest_files.log"),
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
            category="Input files",
        ),
    log:
        str(LOGS / "ledger_merge.log"),
    script:
        "../scripts/ledger_merge.py"
