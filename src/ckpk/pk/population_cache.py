"""Population fits reused while their data are unchanged.

A population fit takes tens of seconds per analyte, and the workflow re-runs its rule
whenever ``pk/concentrations.tsv`` is rewritten, that is after any new file. A new FCS
file does not change the qPCR analyte's readings, so the fit of that analyte would come
out the same, draw for draw (one seed, deterministic sampler). Each analyte's fit is kept
under a key made of its readings (values, not row numbers), the subject sheet (doses),
the settings (seed, AUC end), ckpk's source and the versions of JAX, numpyro and
matplotlib; a fit whose key is cached is taken from there: its table rows and its figures,
byte for byte what fitting again would write. Entries the run did not use are removed at
the end, so the cache holds one run's fits.

The folder is the workflow's own (``results/.cache/popfit``): Snakemake empties a rule's
outputs before the job, so the fits cannot be kept there.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ckpk.digest import content_key

#: Libraries whose version changes the draws or the figures.
PACKAGES = ("jax", "jaxlib", "numpyro", "matplotlib")


def _plain(value: object) -> object:
    """numpy scalars as the Python values JSON writes (float, int, bool)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not a table value: {type(value).__name__}")


@dataclass(frozen=True)
class CachedFit:
    """One analyte's fit as the tables and the log need it."""

    population: list[dict[str, object]]
    subjects: list[dict[str, object]]
    log_line: str
    figures: tuple[Path, ...]


class PopulationCache:
    """Fits by content key; ``None`` as folder keeps nothing."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None
        self.used: set[str] = set()
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(
        analyte: str,
        readings: pd.DataFrame,
        subjects: pd.DataFrame | None,
        end: float,
        seed: int,
    ) -> str:
        """The key of ``analyte``'s fit from its ``readings`` (rows of the concentrations
        table) and the subject sheet."""
        sheet = subjects if subjects is not None else "no subject sheet"
        return content_key(["population fit", analyte, readings, sheet, end, seed], PACKAGES)

    def get(self, key: str) -> CachedFit | None:
        if self.folder is None:
            return None
        self.used.add(key)
        entry = self.folder / key
        try:
            saved = json.loads((entry / "fit.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        figures = tuple(sorted((entry / "figures").glob("*.png")))
        return CachedFit(saved["population"], saved["subjects"], saved["log_line"], figures)

    def put(
        self,
        key: str,
        population: list[dict[str, object]],
        subjects: list[dict[str, object]],
        log_line: str,
        figures: list[Path],
    ) -> None:
        """Keep a fit; written beside the cache and renamed, so that a crash never leaves
        a half-written entry."""
        if self.folder is None:
            return
        self.used.add(key)
        partial = self.folder / f"{key}.{os.getpid()}.part"
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "figures").mkdir(parents=True)
        saved = {"population": population, "subjects": subjects, "log_line": log_line}
        text = json.dumps(saved, default=_plain, ensure_ascii=False)
        (partial / "fit.json").write_text(text, encoding="utf-8")
        for figure in figures:
            shutil.copyfile(figure, partial / "figures" / Path(figure).name)
        shutil.rmtree(self.folder / key, ignore_errors=True)
        os.replace(partial, self.folder / key)

    def prune(self) -> None:
        """Remove the entries (and leftovers of crashed runs) this run did not use."""
        if self.folder is None:
            return
        for entry in self.folder.iterdir():
            if entry.name not in self.used:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
