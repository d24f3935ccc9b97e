# Flow cytometry: compile the gating strategy once, gate FCS files per subject, then CAR T
# cells per µL and % of CD3+.
from ckpk.flow import GATE_KEYS


rule flow_plan:
    # FlowKit parses the strategy here, once; gating jobs read the compiled plan.
    input:
        strategy=config["flow"]["gating"],
    output:
        plan=FLOW_PLAN,
    log:
        str(LOGS / "flow" / "plan.log"),
    benchmark:
        str(LOGS / "benchmarks" / "flow_plan.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        sample_group=config["flow"]["sample_group"],
    script:
        "../scripts/flow_plan.py"


rule flow_gate_subject:
    input:
        fcs=fcs_files_of_subject,
        strategy=config["flow"]["gating"],
        plan=FLOW_PLAN,
    output:
        counts=str(RESULTS / "flow" / "batches" / "{subject}.gate_counts.tsv"),
        ledger=str(RESULTS / "flow" / "batches" / "{subject}.ledger.tsv"),
        qc=report(
            directory(str(RESULTS / "flow" / "qc" / "{subject}")),
            patterns=["{name}.png"],
            # No caption per figure: Snakemake renders each caption with a link to every
            # file of the report, so hundreds of captioned QC plots made the report take
            # most of `make run`. workflow.rst explains these figures once.
            category="QC",
            subcategory="Flow gates {subject}",
        ),
    log:
        str(LOGS / "flow" / "gate_{subject}.log"),
    benchmark:
        str(LOGS / "benchmarks" / "flow_gate_subject_{subject}.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        labels=fcs_labels_of_subject,
        sample_group=config["flow"]["sample_group"],
        qc_plots=config["flow"]["qc_plots"],
    script:
        "../scripts/flow_gate_subject.py"


rule flow_car_t:
    input:
        counts=lambda wc: flow_batch_outputs("gate_counts"),
        ledgers=lambda wc: flow_batch_outputs("ledger"),
        manifest=rules.ingest_files.output.manifest,
        strategy=config["flow"]["gating"],
        plan=FLOW_PLAN,
    output:
        gate_counts=report(
            str(RESULTS / "flow" / "gate_counts.tsv"),
            caption="../report/gate_counts.rst",
            category="Flow",
        ),
        car_t=report(
            str(RESULTS / "flow" / "car_t.tsv"),
            caption="../report/car_t.rst",
            category="Flow",
        ),
        ledger=str(RESULTS / "flow" / "ledger.tsv"),
    log:
        str(LOGS / "flow" / "car_t.log"),
    benchmark:
        str(LOGS / "benchmarks" / "flow_car_t.tsv")
    conda:
        "../envs/ckpk.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        sample_group=config["flow"]["sample_group"],
        gates={key: config["flow"].get(key) for key in GATE_KEYS},
        lloq_events=config["flow"]["lloq_events"],
    script:
        "../scripts/flow_car_t.py"
