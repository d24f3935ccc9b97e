"""Every entry of the input folder, found without ever being fooled by one.

The rule (docs/rules.md, "Bad input"): every entry under ``input_dir`` gets a ledger row.
Regular files are read. A link is followed only when it leads to a file inside the input
folder; a link that leads outside it, or nowhere, is rejected without being opened; a link
to a folder inside it is not walked (its files are listed where they really are). FIFOs,
sockets and devices are never opened. A name Snakemake or a table cannot carry (not valid
UTF-8, a control character, ``{`` or ``}``) is rejected with a reason and kept out of the
workflow's inputs, so one odd name never stops the run.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ckpk.errors import InputError

from .sheets import SHEETS, SUBJECTS_SHEET, read_subjects, sheet_file

FCS_EXTENSIONS = {".fcs", ".lmd"}
QPCR_EXTENSIONS = {".txt", ".csv", ".xls", ".xlsx", ".rdml", ".tsv"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Entry:
    """One entry of the input folder."""

    rel: str  # POSIX path relative to input_dir, printable (odd bytes escaped)
    path: Path  # what to open: the file itself, or a link's target inside the folder
    problem: str = ""  # why it is not read ("" for a usable regular file)
    ignored: bool = False  # not an input at all (a link to a folder inside the folder)


def printable(text: str) -> str:
    """``text`` with undecodable bytes as ``\\xNN`` and control characters escaped."""
    raw = text.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), shown)


def name_problem(name: str) -> str:
    """Why a file name cannot travel through the workflow ("" when it can)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "its name is not valid UTF-8 (bytes from another system's encoding, e.g. an old "
            "Windows share); rename the file"
        )
    if _CONTROL.search(name):
        return "its name holds a tab, line break or other control character; rename the file"
    if "{" in name or "}" in name:
        return "its name holds '{' or '}', which Snakemake reads as wildcards; rename the file"
    return ""


def _link_entry(rel: str, path: Path, root_real: str) -> Entry:
    """The entry for a symbolic link: usable only when it leads to a regular file inside
    the input folder."""
    target = os.path.realpath(path)
    shown = printable(rel)
    if not os.path.lexists(target) or not os.path.exists(path):
        return Entry(shown, path, f"a link to {printable(os.readlink(path))}, which does not exist")
    if os.path.commonpath([root_real, target]) != root_real:
        where = "folder" if os.path.isdir(target) else "file"
        return Entry(
            shown,
            path,
            f"a link to a {where} outside the input folder ({printable(target)}); links are "
            f"followed only inside it: copy the {where} in instead",
        )
    if os.path.isdir(target):
        return Entry(
            shown,
            path,
            "a link to a folder inside the input folder: its files are listed where they are",
            ignored=True,
        )
    mode = os.stat(target).st_mode
    if not stat.S_ISREG(mode):
        return Entry(shown, path, "a link to a FIFO, socket or device: never opened")
    return Entry(shown, Path(target))


def _walk(folder: Path, prefix: str, root_real: str, found: list[Entry]) -> None:
    try:
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        found.append(
            Entry(printable(prefix.rstrip("/")), folder, f"cannot be listed ({exc.strerror})")
        )
        return
    for child in children:
        rel = prefix + child.name
        path = Path(child.path)
        problem = name_problem(child.name)
        if child.is_symlink():
            entry = _link_entry(rel, path, root_real)
            if problem and not entry.problem:
                entry = Entry(entry.rel, entry.path, problem)
            found.append(entry)
        elif child.is_dir(follow_symlinks=False):
            if problem:
                found.append(Entry(printable(rel) + "/", path, f"a folder: {problem}"))
            else:
                _walk(path, rel + "/", root_real, found)
        elif child.is_file(follow_symlinks=False):
            found.append(Entry(printable(rel), path, problem))
        else:
            found.append(
                Entry(
                    printable(rel),
                    path,
                    "not a regular file (a FIFO, socket or device): never opened",
                )
            )


def scan_input(input_dir: str | Path) -> list[Entry]:
    """Every entry under ``input_dir``, sorted by its printable relative path."""
    root = Path(input_dir)
    found: list[Entry] = []
    _walk(root, "", os.path.realpath(root), found)
    return sorted(found, key=lambda e: e.rel)


def list_input_files(input_dir: str | Path) -> list[str]:
    """The usable files under ``input_dir`` (no problem), as sorted relative paths.

    These are the paths Snakemake may take as inputs; everything else is only in the
    ledger (see :func:`listing_signature`).
    """
    return [e.rel for e in scan_input(input_dir) if not e.problem]


def listing_signature(input_dir: str | Path) -> str:
    """A digest of every entry's name and verdict: a new or renamed odd file, which is
    not a Snakemake input, still makes ingest run again."""
    lines = "\n".join(f"{e.rel}\t{e.problem}" for e in scan_input(input_dir))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def looks_like_fcs(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == b"FCS"
    except OSError:
        return False


def classify(rel: str, path: Path | None = None) -> str:
    """Kind of a file from where it sits and what it starts with.

    ``path`` is opened (to sniff an FCS header under ``flow/``) only when given; pass
    None for entries that must never be opened.
    """
    parts = rel.rstrip("/").split("/")
    if len(parts) == 1 and parts[0] in SHEETS:
        return "sheet"
    top = parts[0].lower()
    suffix = Path(parts[-1]).suffix.lower()
    if top == "flow" and len(parts) > 1:
        if suffix in FCS_EXTENSIONS or (path is not None and looks_like_fcs(path)):
            return "fcs"
        return "other"
    if top == "qpcr" and len(parts) > 1:
        if suffix in QPCR_EXTENSIONS and not parts[-1].startswith("."):
            return "qpcr"
        return "other"
    return "other"


def check_input_folder(input_dir: str | Path) -> None:
    """Refuse, before any job, an input folder no run could make anything of.

    A missing ``subjects.tsv``, one that cannot be read or lists no usable subject (no
    file can then be given a subject), and a folder without a single FCS file or qPCR
    export would otherwise give a "green" run whose every file is refused; the message
    names the file or folder and what to do.
    """
    root = Path(input_dir)
    sheet = root / SUBJECTS_SHEET
    if sheet_file(root, SUBJECTS_SHEET) is None:
        raise InputError(
            f"{sheet} is missing (or is not a file inside the folder): list every subject "
            "in it (tab-separated columns subject_id and dose_level; see config/README.md), "
            "then run again"
        )
    notes: list[str] = []
    try:
        subjects = read_subjects(sheet, notes)
    except InputError as exc:
        message = str(exc).removeprefix(f"{SUBJECTS_SHEET}: ")
        raise InputError(f"{sheet}: {message}; correct the sheet and run again") from exc
    if subjects.empty:
        why = f" ({notes[0].removeprefix(SUBJECTS_SHEET + ': ')})" if notes else ""
        raise InputError(
            f"{sheet} lists no subject{' that can be used' if notes else ''}{why}: add one "
            "row per subject (subject_id, dose_level)"
        )
    kinds = {classify(e.rel, e.path if not e.problem else None) for e in scan_input(root)}
    if not kinds & {"fcs", "qpcr"}:
        raise InputError(
            f"{root} holds no instrument file: put FCS files under {root / 'flow'}/ and "
            f"qPCR exports under {root / 'qpcr'}/ (see README.md), then run again"
        )
