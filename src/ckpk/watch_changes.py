"""How ``ckpk watch`` learns that the drop folder changed, and when a change is complete.

Split from :mod:`ckpk.watch` (the service loop): each entry's signature (size, mtime,
inode), a snapshot of the folder, the tracker that says when every changed file has
stopped changing, and the file systems whose changes never reach inotify (network
shares), where the watcher polls instead.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# Signature of an entry: (size, mtime in ns, inode); None when it is gone. The inode
# catches a copy tool that renames a finished temporary file over the old one with the
# same size and a preserved mtime.
Signature = tuple[int, int, int] | None

# File systems whose changes made by other machines never reach inotify here.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "afs",
        "9p",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "fuse.davfs",
        "vboxsf",
        "virtiofs",
    }
)
# Reads (ours, Snakemake's) produce these; they change nothing.
READ_EVENTS = frozenset({"opened", "closed_no_write"})
# A folder's own modification only says an entry inside changed; that entry has its event.
FOLDER_NOISE = frozenset({"modified", "attrib", "closed"})
_UNSEEN = object()


def signature(path: Path) -> Signature:
    """(size, mtime_ns, inode) of a file, following a link; None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        try:
            st = path.lstat()
        except OSError:
            return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _files_under(root: Path) -> Iterable[str]:
    """Relative paths of every non-folder entry under ``root`` (links not followed into)."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda exc: None):
        base = Path(dirpath)
        # A link to a folder is listed among dirnames and not walked; it is an entry.
        for name in [d for d in dirnames if (base / d).is_symlink()] + filenames:
            yield (base / name).relative_to(root).as_posix()


def snapshot(root: Path) -> dict[str, Signature]:
    """Every entry under ``root`` with its signature."""
    return {rel: signature(root / rel) for rel in _files_under(root)}


class ChangeTracker:
    """Entries reported changed, and whether they have all stopped changing.

    ``note`` may be called from the event thread at any time; the loop calls ``refresh``
    (stat every pending entry), ``settled`` and ``take``. An entry is settled when its
    signature has not changed and no event came for it for ``settle`` seconds.
    ``take`` hands over the entries that differ from what the previous run saw and
    records their signatures, so spurious events (a touch without change, our own reads
    on some systems) do not start runs.
    """

    def __init__(
        self, root: Path, settle: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.root = root
        self.settle = settle
        self.clock = clock
        self.seen: dict[str, Signature] = {}
        self._pending: dict[str, tuple[object, float]] = {}
        self._lock = threading.Lock()

    def note(self, rel: str) -> None:
        with self._lock:
            self._pending[rel] = (_UNSEEN, self.clock())

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def rescan(self) -> None:
        """Note every entry that differs from what the last run saw (all of them at start)."""
        current = snapshot(self.root)
        with self._lock:
            seen = dict(self.seen)
        for rel in sorted(set(current) | set(seen)):
            if current.get(rel) != seen.get(rel):
                self.note(rel)

    def refresh(self) -> None:
        now = self.clock()
        with self._lock:
            for rel, (old, since) in list(self._pending.items()):
                path = self.root / rel
                if path.is_dir() and not path.is_symlink():
                    # A folder copied or moved in: its files are what the run reads.
                    del self._pending[rel]
                    for inner in _files_under(path):
                        self._pending.setdefault(f"{rel}/{inner}", (_UNSEEN, since))
                    continue
                current = signature(path)
                if current is None and rel not in self.seen:
                    # A folder that went away: what the last run saw inside it is gone.
                    gone = [s for s in self.seen if s.startswith(rel + "/")]
                    if gone:
                        del self._pending[rel]
                        for inner in gone:
                            self._pending.setdefault(inner, (_UNSEEN, since))
                        continue
                if current != old:
                    self._pending[rel] = (current, now if old is not _UNSEEN else since)

    def settled(self) -> bool:
        now = self.clock()
        with self._lock:
            return bool(self._pending) and all(
                sig is not _UNSEEN and now - since >= self.settle
                for sig, since in self._pending.values()
            )

    def take(self) -> list[str]:
        """The settled entries that changed since the last run; they count as seen.

        An entry noted since ``settled()`` said yes (an event racing the loop) stays
        pending for the next run.
        """
        now = self.clock()
        with self._lock:
            changed = []
            for rel, (sig, since) in sorted(self._pending.items()):
                if sig is _UNSEEN or now - since < self.settle:
                    continue
                del self._pending[rel]
                if sig == self.seen.get(rel):
                    continue
                changed.append(rel)
                if sig is None:
                    self.seen.pop(rel, None)
                else:
                    self.seen[rel] = sig  # type: ignore[assignment]
            return changed


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (Linux: /proc/self/mounts)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].encode().decode("unicode_escape")  # \040 for spaces
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind
