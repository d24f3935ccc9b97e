"""What ``ckpk watch`` writes about its runs: ``RESULTS/watch.log`` and its fields (split
from :mod:`ckpk.watch`)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import IO


class WatchLog:
    """``RESULTS/watch.log``: one tab-separated line per event: its time (ISO 8601, local
    time with offset; for a run, when it started), its kind (start, waiting, run,
    unlock, error, stop) and ``key=value`` fields. Echoed on stderr (a service's journal)."""

    def __init__(self, path: Path, echo: IO[str] | None = None) -> None:
        self.path = path
        self.echo = echo

    def write(self, kind: str, at: _dt.datetime | None = None, **fields: object) -> None:
        """One line; ``at`` (default now) is when it happened, e.g. when a run started."""
        stamp = (at or now()).isoformat(timespec="milliseconds")
        parts = [stamp, kind] + [f"{k}={_clean(v)}" for k, v in fields.items() if v is not None]
        line = "\t".join(parts)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        if self.echo is not None:
            print(f"ckpk watch: {line}", file=self.echo, flush=True)


def now() -> _dt.datetime:
    return _dt.datetime.now().astimezone()


def _clean(value: object) -> str:
    return " ".join(str(value).split())


def describe_files(files: list[str], limit: int = 5) -> str:
    if not files:
        return "(start)"
    shown = ", ".join(files[:limit])
    return shown + (f" (+{len(files) - limit} more)" if len(files) > limit else "")


def ledger_counts(results: Path) -> dict[str, object]:
    """Files used, rejected and ignored according to RESULTS/ledger.tsv ("-" without one)."""
    from ckpk.tables import read_tsv

    try:
        status = read_tsv(results / "ledger.tsv")["status"].value_counts()
    except (OSError, KeyError, ValueError):
        return {"used": "-", "rejected": "-", "ignored": "-"}
    return {
        "used": int(status.get("ok", 0)),
        "rejected": int(status.get("rejected", 0)),
        "ignored": int(status.get("ignored", 0)),
    }
