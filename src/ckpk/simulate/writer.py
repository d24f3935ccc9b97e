"""Write a whole simulated trial in the input-folder layout (config/README.md) with its truth.

Layout written under ``out_dir``::

    subjects.tsv, samples.tsv
    flow/<subject>/<subject>_D<day>.fcs     one tube per visit
    qpcr/PCR<nn>_<date>.txt | .csv          QuantStudio and CFX plates, alternating
    truth/                                  what the pipeline should find (not an input)

A few realistic problems are planted (``truth/problems.tsv``): a truncated FCS
transfer, a tube for a subject who is not enrolled, an instrument default file name
with no samples.tsv row, a re-acquired tube that duplicates a visit and a stray note.
``clinical.tsv`` gives each subject's endpoints (SRI-4 response, CRS grade, DLT), response
more likely at higher exposure (``truth/README.txt``). The ``truth/`` files show up in the
ledger as "other" files, as anything unexpected in an input folder should.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.pk.kinetics import stein_auc, stein_curve
from ckpk.qpcr.quantify import DEFAULT_DNA_NG
from ckpk.simulate import cytometry, plates
from ckpk.simulate.clinical import b_cell_truth, clinical_endpoints, response_rule_block
from ckpk.simulate.trial import (
    Subject,
    blood_state,
    draw_subjects,
    true_copies_per_ug,
)
from ckpk.tables import write_tsv

CAR_TARGET = "CAR"
PATIENT_NAME = "DOE^JANE"  # planted in free-text keywords; must never reach results


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate. Defaults give the 18-subject demo trial."""

    n_subjects: int = 18
    seed: int = 2019
    events_per_file: int = 100_000
    follow_up_days: float = 365.0
    default_dna_ng: float = DEFAULT_DNA_NG  # ng per qPCR reaction, as the workflow assumes
    problems: bool = True  # plant the bad inputs listed in truth/problems.tsv
    workers: int | None = None  # processes writing FCS files (default: all cores)


def _rng(settings: SimulationSettings, *key: int) -> np.random.Generator:
    # One independent stream per (purpose, subject, visit): results do not depend on
    # the order things are written in.
    return np.random.default_rng(np.random.SeedSequence([settings.seed, *key]))


def simulate_trial(out_dir: Path, settings: SimulationSettings | None = None) -> str:
    """Write the trial; return a one-line summary."""
    settings = settings or SimulationSettings()
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; ckpk simulate writes a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    subjects = draw_subjects(settings.n_subjects, _rng(settings, 0), settings.follow_up_days)

    _write_subjects(out_dir, subjects)
    flow_rows, flow_truth = _write_flow(out_dir, subjects, settings)
    qpcr_rows, qpcr_truth, plate_truth = _write_qpcr(out_dir, subjects, settings)
    sample_rows = pd.DataFrame(flow_rows + qpcr_rows)
    write_tsv(
        sample_rows,
        out_dir / "samples.tsv",
        columns=[
            "sample",
            "subject_id",
            "day",
            "lymphocytes_per_ul",
            "beads_per_test",
            "blood_ul",
            "dna_ng",
        ],
    )
    clinical, clinical_truth = clinical_endpoints(subjects, _rng(settings, 9))
    write_tsv(clinical, out_dir / "clinical.tsv", sort_by=["subject_id", "endpoint", "day"])
    problems = _plant_problems(out_dir, subjects, settings) if settings.problems else []

    truth = out_dir / "truth"
    write_tsv(pd.DataFrame(flow_truth), truth / "flow.tsv", sort_by=["file"])
    write_tsv(pd.DataFrame(qpcr_truth), truth / "qpcr.tsv", sort_by=["plate", "sample"])
    write_tsv(pd.DataFrame(plate_truth), truth / "plates.tsv", sort_by=["plate"])
    write_tsv(
        _parameter_truth(subjects), truth / "parameters.tsv", sort_by=["subject_id", "analyte"]
    )
    write_tsv(_pk_truth(subjects), truth / "pk.tsv", sort_by=["subject_id", "analyte"])
    write_tsv(clinical_truth, truth / "clinical.tsv", sort_by=["subject_id", "endpoint", "day"])
    write_tsv(b_cell_truth(subjects), truth / "b_cells.tsv", sort_by=["subject_id"])
    write_tsv(
        pd.DataFrame(problems, columns=["file", "problem"]),
        truth / "problems.tsv",
        columns=["file", "problem"],
        sort_by=["file"],
    )
    readme = _TRUTH_README.replace("{rule}", response_rule_block())
    (truth / "README.txt").write_text(readme, encoding="utf-8")
    n_fcs = len(flow_truth)
    return (
        f"simulated {len(subjects)} subjects: {n_fcs} FCS files of "
        f"{settings.events_per_file} events, {len(plate_truth)} qPCR plates, "
        f"{len(problems)} planted problems -> {out_dir}"
    )


def _write_subjects(out_dir: Path, subjects: list[Subject]) -> None:
    table = pd.DataFrame(
        {
            "subject_id": [s.subject_id for s in subjects],
            "dose_level": [s.dose_level for s in subjects],
            "dose": [s.dose for s in subjects],
            "infusion_date": [s.infusion_date for s in subjects],
            "cohort": [s.cohort for s in subjects],
        }
    )
    write_tsv(table, out_dir / "subjects.tsv")


def _day_label(day: float) -> str:
    return f"{day:g}"


def _acquisition_date(subject: Subject, day: float) -> np.datetime64:
    return np.datetime64(subject.infusion_date) + np.timedelta64(int(math.floor(day)), "D")


def _write_flow(
    out_dir: Path, subjects: list[Subject], settings: SimulationSettings
) -> tuple[list[dict], list[dict]]:
    jobs = [(out_dir, si, subject, settings) for si, subject in enumerate(subjects)]
    # The pool forks: a process that has loaded JAX (threads of its own) could deadlock.
    wanted = 1 if "jax" in sys.modules else (settings.workers or os.cpu_count() or 1)
    workers = min(wanted, len(jobs))
    if workers > 1:
        # Drawing 100k events is CPU-bound; subjects are independent random streams,
        # so writing them in parallel gives the same bytes as writing them in turn.
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_write_subject_flow, jobs))
    else:
        results = [_write_subject_flow(job) for job in jobs]
    sample_rows = [row for rows, _ in results for row in rows]
    truth_rows = [row for _, rows in results for row in rows]
    return sample_rows, truth_rows


def _write_subject_flow(
    job: tuple[Path, int, Subject, SimulationSettings],
) -> tuple[list[dict], list[dict]]:
    out_dir, si, subject, settings = job
    sample_rows: list[dict] = []
    truth_rows: list[dict] = []
    for vi, day in enumerate(subject.visits):
        rng = _rng(settings, 1, si, vi)
        blood = blood_state(subject, day)
        if subject.single_platform:
            # Counting-bead lots differ; the count per test is on the lot's sheet.
            tube = cytometry.TubeSetup(
                blood_ul=50.0, beads_per_test=float(rng.choice([49_875.0, 51_230.0, 50_410.0]))
            )
        else:
            tube = cytometry.TubeSetup(blood_ul=100.0, beads_per_test=None)
        data, counts = cytometry.simulate_events(blood, tube, settings.events_per_file, rng)
        name = f"{subject.subject_id}_D{_day_label(day)}.fcs"
        # One tube in forty is saved under the instrument's default name; the lab
        # then records its identity in samples.tsv.
        instrument_name = rng.random() < 0.025
        if instrument_name:
            name = f"Specimen_{si + 1:03d}_Tube_{vi + 1:03d}.fcs"
        rel = f"flow/{subject.subject_id}/{name}"
        date = _acquisition_date(subject, day)
        cytometry.write_fcs(out_dir / rel, data, _fcs_keywords(name, date, subject))
        cbc = cytometry.lymphocyte_gate_per_ul(blood) * float(rng.normal(1.0, 0.04))
        row: dict = {"sample": rel}
        if instrument_name:
            row.update(subject_id=subject.subject_id, day=day)
        if tube.beads_per_test:
            row.update(beads_per_test=tube.beads_per_test, blood_ul=tube.blood_ul)
        else:
            row.update(lymphocytes_per_ul=round(cbc, 1))
        sample_rows.append(row)
        truth_rows.append(
            {
                "file": rel,
                "subject_id": subject.subject_id,
                "day": day,
                "car_per_ul": blood.car_t,
                "car_pct_cd3": blood.car_pct_cd3,
                "b_cells_per_ul": blood.b_cells,
                "t_cells_per_ul": blood.t_cells,
                "lymphocytes_per_ul": blood.lymphocytes,
                "count_method": "beads" if tube.beads_per_test else "cbc",
                "events": settings.events_per_file,
                "car_events": counts["car_t"],
                "bead_events": counts.get("bead", 0),
                "t_events": counts["car_t"] + counts["t_native"],
                "b_events": counts["b"],
            }
        )
    return sample_rows, truth_rows


def _fcs_keywords(name: str, date: np.datetime64, subject: Subject) -> dict[str, str]:
    day = pd.Timestamp(date)
    return {
        "$CYT": "FACSLyric",
        "$CYTSN": "R658800123",
        "$DATE": day.strftime("%d-%b-%Y").upper(),
        "$BTIM": "10:14:03",
        "$ETIM": "10:16:41",
        "$FIL": name,
        # Free text a lab really types in; the pipeline must never copy it anywhere.
        "$SRC": f"{PATIENT_NAME} peripheral blood",
        "$OP": "Operator M. Mustermann",
        "$COM": f"patient {PATIENT_NAME} DOB 1984-02-29",
        "$CELLS": f"PB {PATIENT_NAME}",
        "PATIENT ID": f"MRN-{int(subject.subject_id[1:]) * 7919:06d}",
        "EXPERIMENT NAME": "CAR-T CK panel",
        "TUBE NAME": name.removesuffix(".fcs"),
    }


def _write_qpcr(
    out_dir: Path, subjects: list[Subject], settings: SimulationSettings
) -> tuple[list[dict], list[dict], list[dict]]:
    # Samples are extracted and run in collection order, 25 per plate.
    collected = []
    for si, subject in enumerate(subjects):
        for vi, day in enumerate(subject.visits):
            collected.append((_acquisition_date(subject, day), si, vi, subject, day))
    collected.sort(key=lambda item: (item[0], item[1]))

    sample_rows: list[dict] = []
    truth_rows: list[dict] = []
    plate_rows: list[dict] = []
    per_plate = plates.unknowns_per_plate()
    for pi, start in enumerate(range(0, len(collected), per_plate)):
        batch = collected[start : start + per_plate]
        rng = _rng(settings, 2, pi)
        curve = plates.PlateCurve(
            slope=float(rng.normal(-3.36, 0.04)), intercept=float(rng.normal(38.6, 0.3))
        )
        run_date = pd.Timestamp(batch[-1][0]) + pd.Timedelta(days=3)
        plate_id = f"PCR{pi + 1:02d}_{run_date.strftime('%Y-%m-%d')}"
        samples = []
        for _, si, vi, subject, day in batch:
            sheet_row, truth = _plate_sample(settings, si, vi, subject, day, plate_id)
            if sheet_row is not None:
                sample_rows.append(sheet_row)
            truth_rows.append(truth)
            samples.append((truth["sample"], truth["copies_per_reaction"]))
        # The plate's own stream, after its curve: the wells' Cq noise.
        wells = plates.layout_plate(samples, curve, CAR_TARGET, rng)
        plate_rows.append(_write_plate(out_dir, pi, plate_id, run_date, wells, curve))
    return sample_rows, truth_rows, plate_rows


def _plate_sample(
    settings: SimulationSettings, si: int, vi: int, subject: Subject, day: float, plate_id: str
) -> tuple[dict | None, dict]:
    """One visit's DNA on a plate: its samples-table row (None when the sheet needs none)
    and its truth row."""
    srng = _rng(settings, 3, si, vi)
    name = f"{subject.subject_id}_D{_day_label(day)}"
    row: dict = {"sample": name}
    dna_ng = settings.default_dna_ng
    if srng.random() < 0.2:
        # Low DNA yield: the lab loads less and records the measured mass.
        dna_ng = round(float(srng.uniform(60.0, 190.0)), 1)
        row["dna_ng"] = dna_ng
    if srng.random() < 0.04:
        # Biobank accession number instead of the visit name.
        name = f"BB-{si + 1:02d}{vi + 1:02d}{int(srng.integers(100, 999))}"
        row.update(sample=name, subject_id=subject.subject_id, day=day)
    copies_ug = true_copies_per_ug(subject, day)
    truth = {
        "plate": plate_id,
        "sample": name,
        "subject_id": subject.subject_id,
        "day": day,
        "copies_per_ug": copies_ug,
        "dna_ng": dna_ng,
        "copies_per_reaction": copies_ug * dna_ng / 1000.0,
    }
    return (row if len(row) > 1 else None), truth


def _write_plate(
    out_dir: Path,
    pi: int,
    plate_id: str,
    run_date: pd.Timestamp,
    wells: list[plates.Well],
    curve: plates.PlateCurve,
) -> dict:
    """Write one plate's export (QuantStudio and CFX in turn); return its truth row."""
    suffix = ".txt" if pi % 2 == 0 else ".csv"
    path = out_dir / "qpcr" / f"{plate_id}{suffix}"
    if suffix == ".txt":
        plates.write_quantstudio_txt(path, wells, run_date.strftime("%Y-%m-%d"))
    else:
        plates.write_cfx_csv(path, wells)
    return {
        "plate": plate_id,
        "file": f"qpcr/{path.name}",
        "format": "QuantStudio Results txt" if suffix == ".txt" else "CFX Cq Results csv",
        "target": CAR_TARGET,
        "slope": curve.slope,
        "intercept": curve.intercept,
        "efficiency_pct": curve.efficiency_pct,
        "lowest_standard_copies": min(plates.STANDARD_COPIES),
    }


def _plant_problems(
    out_dir: Path, subjects: list[Subject], settings: SimulationSettings
) -> list[tuple[str, str]]:
    rng = _rng(settings, 4)
    problems = []
    # 1. A transfer interrupted half way: the DATA segment is cut short.
    victim = subjects[min(1, len(subjects) - 1)]
    day = victim.visits[min(4, len(victim.visits) - 1)]
    src = out_dir / "flow" / victim.subject_id / f"{victim.subject_id}_D{_day_label(day)}.fcs"
    if src.exists():
        data = src.read_bytes()
        src.write_bytes(data[: int(len(data) * 0.6)])
        problems.append((str(src.relative_to(out_dir)), "truncated FCS file"))
    # 2. A tube for a subject who is not in subjects.tsv (a screening failure).
    blood = blood_state(subjects[0], -7.0)
    tube = cytometry.TubeSetup()
    data, _ = cytometry.simulate_events(blood, tube, min(settings.events_per_file, 5000), rng)
    rel = "flow/S99_D-7.fcs"
    cytometry.write_fcs(out_dir / rel, data, {"$CYT": "FACSLyric"})
    problems.append((rel, "unknown subject S99"))
    # 3. An instrument default name with no samples.tsv row.
    rel = "flow/Specimen_099_Tube_001.fcs"
    cytometry.write_fcs(out_dir / rel, data, {"$CYT": "FACSLyric"})
    problems.append((rel, "file name gives no subject/day and samples.tsv has no row"))
    # 4. A re-acquired tube: two files for the same subject and visit.
    subject = subjects[-1]
    day = subject.visits[min(3, len(subject.visits) - 1)]
    original = (
        out_dir / "flow" / subject.subject_id / f"{subject.subject_id}_D{_day_label(day)}.fcs"
    )
    if original.exists():
        rerun = original.with_name(f"{subject.subject_id}_D{_day_label(day)}_rerun.fcs")
        rerun.write_bytes(original.read_bytes())
        for path in (original, rerun):
            problems.append((str(path.relative_to(out_dir)), "duplicate subject/day"))
    # 5. A stray file that is no instrument export.
    note = out_dir / "flow" / "acquisition_notes.txt"
    note.write_text("Cytometer QC passed (CS&T) on all acquisition days.\n", encoding="utf-8")
    problems.append(("flow/acquisition_notes.txt", "not an instrument file"))
    return problems


# Cmax, Tmax and AUC(0-28) of the true curves are taken on this grid (days, every 0.005).
_TRUTH_GRID = np.linspace(0.0, 28.0, 28 * 200 + 1)


def _parameter_truth(subjects: list[Subject]) -> pd.DataFrame:
    rows = []
    for s in subjects:
        for analyte, p in (("car_per_ul", s.kinetics), ("car_copies_per_ug", s.copies_kinetics)):
            rows.append(
                {
                    "subject_id": s.subject_id,
                    "analyte": analyte,
                    "responder": s.responder,
                    "cmax": p.cmax,
                    "tmax": p.tmax,
                    "foldx": p.foldx,
                    "rho": p.rho,
                    "doubling_time": p.doubling_time,
                    "alpha": p.alpha,
                    "beta": p.beta,
                    "fb": p.fb,
                    "auc_0_28": stein_auc(p, 0.0, 28.0),
                }
            )
    return pd.DataFrame(rows)


def _pk_truth(subjects: list[Subject]) -> pd.DataFrame:
    rows = []
    for s in subjects:
        blood = [blood_state(s, t) for t in _TRUTH_GRID]  # a scalar model: once per day
        curves = {
            "car_per_ul": stein_curve(_TRUTH_GRID, s.kinetics),
            "car_pct_cd3": np.array([b.car_pct_cd3 for b in blood]),
            "car_copies_per_ug": stein_curve(_TRUTH_GRID, s.copies_kinetics),
            "b_cells_per_ul": np.array([b.b_cells for b in blood]),
        }
        for analyte, values in curves.items():
            peak = int(np.argmax(values))
            rows.append(
                {
                    "subject_id": s.subject_id,
                    "dose_level": s.dose_level,
                    "analyte": analyte,
                    "responder": s.responder,
                    "cmax": float(values[peak]),
                    "tmax": float(_TRUTH_GRID[peak]),
                    "auc_0_28": float(np.trapezoid(values, _TRUTH_GRID)),
                    "single_platform": s.single_platform,
                    "vcn": s.vcn,
                    "nucleated_per_ul": s.nucleated_per_ul,
                }
            )
    return pd.DataFrame(rows)


_TRUTH_README = (
    """\
Truth of this simulated trial (written by `ckpk simulate`; not an input of the pipeline).

flow.tsv        per FCS file: true CAR T cells/uL (car_per_ul), % of CD3+ (car_pct_cd3),
                B cells/uL, T cells/uL, lymphocytes/uL in the blood, and the numbers of
                events drawn per population (car_events, bead_events, t_events, b_events).
qpcr.tsv        per plate sample: true transgene copies/ug gDNA, DNA mass loaded (ng) and
                expected copies per reaction (wells draw Poisson counts around it).
plates.tsv      per plate: true slope/intercept/efficiency of the assay.
parameters.tsv  per subject x analyte: the Stein 2019 parameters the curves were drawn from.
pk.tsv          per subject x analyte: Cmax, Tmax and AUC(0-28) of the true dense curve.
clinical.tsv    per subject x endpoint: the value written to clinical.tsv and, for SRI-4
                response, the probability it was drawn with. The rule: """
    + "{rule}"
    + """
b_cells.tsv     per subject: the true B-cell aplasia onset and reconstitution day at the
                threshold of 1 cell/uL (first day below, first later day back at or above).
problems.tsv    the bad input files planted on purpose and what is wrong with them.
"""
)
