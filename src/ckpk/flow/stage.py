"""The flow stage of the workflow: gating plan → batches of FCS files → gate counts → CAR T
table.

The strategy is compiled once into a plan (``flow/plan.json``, rule ``flow_plan``), so
gating jobs do not parse it again, nor import FlowKit, unless a file needs FlowKit's own
engine. Files are gated in batches (one Snakemake job per subject): a job's start-up is
paid once per batch, and adding a file re-gates only its subject's batch
(benchmarks/README.md has the measured figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ckpk.flow.counts import car_t_table
from ckpk.flow.gating import GATE_COUNT_COLUMNS, GatingOutcome
from ckpk.flow.plan import GatingPlan, cached_plan
from ckpk.flow.plan_compile import as_plan
from ckpk.inputs.ledger import STAGE_LEDGER_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flowkit

    from ckpk.flow.fcs import FcsFile

# flow/gate_counts.tsv (config/README.md): identity first, then the gating engine's columns.
GATE_COUNTS_COLUMNS = ["file", "subject_id", "day"] + [
    c for c in GATE_COUNT_COLUMNS if c not in ("file", "notes")
]
FLOW_LEDGER_COLUMNS = STAGE_LEDGER_COLUMNS  # the ledger columns every stage writes


def qc_plot_name(label: str) -> str:
    """``flow/S01/S01_D14.fcs`` → ``S01__S01_D14.png`` (unique, readable): the one naming
    rule of gate QC plots (config/README.md, "Plots")."""
    parts = Path(label).with_suffix("").parts
    if parts and parts[0].lower() == "flow":
        parts = parts[1:]
    return "__".join(parts) + ".png"


class QcPlotter:
    """The ``on_file`` callback of :func:`ckpk.flow.gating.gate_files` that keeps what each
    gated file's QC plot shows; ``finish`` (called by ``gate_files`` at the end) draws
    them all into ``qc_dir``, named by :func:`qc_plot_name`."""

    def __init__(self, plan: GatingPlan, qc_dir: str | Path) -> None:
        from ckpk.flow.qc_plot import QcBatch  # deferred: matplotlib is only needed here

        self.qc_dir = Path(qc_dir)
        self.qc_dir.mkdir(parents=True, exist_ok=True)
        self.batch = QcBatch(plan)

    def __call__(self, label: str, sample: FcsFile, outcome: GatingOutcome) -> None:
        self.batch.add(outcome, self.qc_dir / qc_plot_name(label))

    def finish(self) -> list[Path]:
        return self.batch.finish()


def qc_plotter(strategy: GatingPlan | flowkit.GatingStrategy, qc_dir: str | Path) -> QcPlotter:
    """A :class:`QcPlotter` of ``strategy`` (a plan, or a FlowKit strategy compiled here)."""
    return QcPlotter(as_plan(strategy), qc_dir)


def load_plan(
    strategy_path: str | Path, sample_group: str | None = None, plan_path: str | Path | None = None
) -> GatingPlan:
    """The strategy's plan: the one compiled into ``plan_path`` when it is of these very
    strategy bytes, else compiled now (which imports FlowKit)."""
    from ckpk.flow.strategy import load_strategy

    if plan_path is not None:
        plan = cached_plan(plan_path, strategy_path, sample_group)
        if plan is not None:
            # FlowKit's engine, when a file needs it, parses the strategy from this path.
            return replace(plan, source=str(strategy_path))
    return as_plan(load_strategy(strategy_path, sample_group or None))


def gate_batch(
    files: Sequence[tuple[str | Path, str]],
    strategy_path: str | Path,
    sample_group: str | None = None,
    qc_dir: str | Path | None = None,
    plan_path: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gate ``(path, label)`` files with one strategy; return (gate counts, ledger rows).

    Labels (paths relative to the input folder) name the files in every table and
    message. With ``qc_dir``, one gate QC PNG per file is drawn there. ``plan_path``: the
    strategy's compiled plan (``flow/plan.json``), used when it matches the strategy.
    """
    from ckpk.flow.gating import gate_files

    plan = load_plan(strategy_path, sample_group, plan_path)
    counts, rejected = gate_files(
        [path for path, _ in files],
        plan,
        labels=[label for _, label in files],
        on_file=qc_plotter(plan, qc_dir) if qc_dir is not None else None,
    )
    rows = [
        {"file": file, "status": "rejected", "reason": reason, "stage": "flow"}
        for file, reason in rejected
    ]
    if len(counts):
        notes = counts.groupby("file", sort=False)["notes"].first()
        for file, note in notes.items():
            rows.append({"file": file, "status": "ok", "reason": note or "", "stage": "flow"})
    return counts, pd.DataFrame(rows, columns=FLOW_LEDGER_COLUMNS)


def summarise_flow(
    gate_counts: pd.DataFrame,
    manifest: pd.DataFrame,
    gates: Mapping[str, str | None],
    lloq_events: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gate counts with identity (``flow/gate_counts.tsv``) and the CAR T table.

    ``gates`` are the resolved gate paths by config key (``car_gate`` ...).
    """
    fcs = manifest[manifest["kind"] == "fcs"]
    identity = fcs[["file", "subject_id", "day"]]
    counts = gate_counts.drop(columns=["subject_id", "day"], errors="ignore")
    counts = counts.merge(identity, on="file", how="left")
    samples = fcs[["file", "subject_id", "day", "lymphocytes_per_ul", "beads_per_test", "blood_ul"]]
    car_t = car_t_table(gate_counts, samples, gates, lloq_events)
    return counts, car_t
