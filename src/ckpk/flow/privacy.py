"""Which FCS keywords may leave the file: a whitelist of technical keywords.

Free text in an FCS file may identify a patient ($SRC, $CELLS, $COM, $OP, $FIL, custom
"patient" keywords), so reading keeps only keywords known to be technical and drops every
other one before FlowKit sees the TEXT segment (docs/rules.md, Bad input). A whitelist, not
a blacklist, since vendors and labs invent keywords no list of names could foresee.
"""

from __future__ import annotations

import re

# FCS TEXT keywords (as FlowIO stores them: lower case, without "$") that are kept.
# Everything else is dropped on reading. Each entry is technical, needed for gating or
# for describing the acquisition, and is not free text about the specimen:
#   tot, par          event and parameter counts
#   mode, datatype, byteord, nextdata   layout of the DATA segment
#   cyt               cytometer model (e.g. "FACSAria"); QC by instrument
#   timestep          scaling of the Time channel
#   spillover, spill  compensation matrix written by the acquisition software (needed)
#   vol               volume acquired (nL, FCS 3.1): volumetric absolute counts
# Per channel (see PER_CHANNEL_KEYWORDS): PnN name, PnS stain, PnR range, PnB bits,
# PnE amplification, PnG gain, PnV voltage, PnL excitation wavelength.
# Deliberately NOT kept: $DATE/$BTIM/$ETIM (a visit date identifies a person; ckpk
# uses the study day), $FIL (file names often carry patient names), $SRC, $CELLS,
# $COM, $OP, $SMNO, $PROJ, $EXP, $INST, $CYTSN and every vendor or custom keyword.
TECHNICAL_KEYWORDS: frozenset[str] = frozenset(
    {
        "tot",
        "par",
        "mode",
        "datatype",
        "byteord",
        "nextdata",
        "cyt",
        "timestep",
        "spillover",
        "spill",
        "vol",
    }
)
PER_CHANNEL_KEYWORDS: frozenset[str] = frozenset({"n", "s", "r", "b", "e", "g", "v", "l"})
_PER_CHANNEL = re.compile(r"^p(\d+)([a-z])$")


def is_technical_keyword(key: str) -> bool:
    """True when FCS keyword ``key`` (FlowIO form, e.g. ``"p3n"``) is on the whitelist."""
    key = key.lower().lstrip("$")
    if key in TECHNICAL_KEYWORDS:
        return True
    match = _PER_CHANNEL.match(key)
    return bool(match) and match.group(2) in PER_CHANNEL_KEYWORDS


def technical_keywords(text: dict[str, str]) -> dict[str, str]:
    """The whitelisted subset of FCS TEXT keywords; everything else is dropped.

    Free text may hold a patient's identity (docs/rules.md, "Bad input").
    """
    return {k: v for k, v in text.items() if is_technical_keyword(k)}
