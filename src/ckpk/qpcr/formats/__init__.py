"""One reader per qPCR instrument export format.

Every module exposes ``NAME``, ``detect(doc) -> bool`` (is this document my format?,
decided from content) and ``read(doc) -> list[dict]`` (well records with the keys of
:data:`ckpk.qpcr.wells.WELL_COLUMNS`). :data:`FORMATS` is the order in which
``read_plate`` asks them; the header names each one requires do not overlap, so the
order only matters for speed. A new instrument is a new module added here.
"""

from __future__ import annotations

from . import biorad_cfx, design_analysis, lightcycler480, quantstudio, rdml, stepone

FORMATS = (rdml, quantstudio, design_analysis, stepone, biorad_cfx, lightcycler480)

__all__ = ["FORMATS"]
