"""Figures redrawn only when what they show has changed.

A trial grows one visit at a time: after one new file, most of the run's figures (another
subject's fit plot) show exactly what they showed before, and drawing them again was most
of an incremental run's time. Each figure is keyed by a digest of everything that shapes
it — the data handed to its drawing function, its file name, the ckpk source and the
matplotlib version — and a figure whose key is in the cache is copied from there, byte
for byte what drawing it again would write. A cache entry no figure of the run used is
removed at the end, so the cache holds one run's figures at most.

The cache folder is the workflow's own (``results/.cache/figures/<rule>``): Snakemake
empties a rule's output folders before the job, so the figures cannot be kept there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ckpk.digest import content_key


class FigureCache:
    """Draws each figure once per content; ``None`` as folder draws every figure."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None
        self.used: set[str] = set()
        self.drawn = 0
        self.copied = 0
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def figure(
        self,
        path: str | Path,
        draw: Callable[..., Path],
        *args: object,
        shown: tuple | None = None,
        **kwargs: object,
    ) -> Path:
        """``draw(*args, **kwargs)``, which writes ``path``, unless a figure of the same
        name, code and data (``shown``, by default the arguments) is cached."""
        if self.folder is None:
            self.drawn += 1
            return draw(*args, **kwargs)
        data = args if shown is None else shown
        key = content_key(
            [Path(path).name, *(a for a in data if a is not path), kwargs], ("matplotlib",)
        )
        self.used.add(key)
        cached = self.folder / f"{key}.png"
        if cached.is_file():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, path)
            self.copied += 1
            return Path(path)
        written = draw(*args, **kwargs)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(written, partial)
        os.replace(partial, cached)  # a crash never leaves a half-written entry
        self.drawn += 1
        return written

    def prune(self) -> None:
        """Remove the entries this run did not use."""
        if self.folder is None:
            return
        for entry in self.folder.iterdir():
            if entry.is_file() and entry.stem not in self.used:
                entry.unlink()

    def summary(self) -> str:
        return f"{self.drawn} figures drawn, {self.copied} unchanged ones copied from the cache"
