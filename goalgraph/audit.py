"""The audit log: every proposed action, its verdict and its result, as JSON lines per thread.

One file per thread, ``<audit dir>/<thread id>.jsonl``, appended to and never rewritten, so
``tail -f`` follows a live run and a crash loses at most the line being written. Records:

* ``verdict``: the proposed call (tool, arguments, thought, step, risk class) and the decision
  (``allow``, ``block`` or ``ask``), its rule, reason and who decided;
* ``result``: whether the call succeeded, its duration, the size of its output, injection flags.

A node re-run by LangGraph (after an approval, or a resume after a crash) appends again; the
repeat is real history (a tool re-run after a crash did run twice) and is kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from goalgraph.paths import data_dir

__all__ = ["AuditLog", "default_audit_dir"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_MAX_ARG_CHARS = 2000


def default_audit_dir() -> Path:
    """Return ``<data dir>/audit``."""
    return data_dir() / "audit"


class AuditLog:
    """Append-only JSON-lines audit records, one file per thread."""

    def __init__(
        self, folder: str | os.PathLike[str] | None = None, *, agent: str | None = None
    ) -> None:
        """Write under ``folder`` (default ``<data dir>/audit``), created on first write.

        ``agent`` names the team member whose actions this log records: every record then
        carries it as ``agent``, so a team's shared thread file tells who did what.
        """
        self.folder = Path(folder) if folder is not None else default_audit_dir()
        self.agent = agent
        self._lock = threading.Lock()

    def path(self, thread_id: str) -> Path:
        """Return the file of ``thread_id``.

        Raises:
            ValueError: If the id could escape the folder (only letters, digits, ``_.-``).
        """
        if not _SAFE_ID.match(thread_id) or thread_id in {".", ".."}:
            raise ValueError(f"invalid thread id for the audit log: {thread_id!r}")
        return self.folder / f"{thread_id}.jsonl"

    async def awrite(self, thread_id: str, event: str, **fields: Any) -> None:
        """Append one record from a worker thread (file I/O stays off the event loop)."""
        await asyncio.to_thread(self.write, thread_id, event, **fields)

    def write(self, thread_id: str, event: str, **fields: Any) -> None:
        """Append one record ``{"ts", "thread_id", "event", **fields}`` (plus ``agent``, if set)."""
        record = {"ts": time.time(), "thread_id": thread_id, "event": event, **fields}
        if self.agent is not None:
            record.setdefault("agent", self.agent)
        if "args" in record:
            record["args"] = _bounded(record["args"])
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        path = self.path(thread_id)
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line)

    def read(self, thread_id: str) -> list[dict[str, Any]]:
        """Return the records of ``thread_id``, oldest first; a damaged line is reported in place.

        Raises:
            FileNotFoundError: If the thread has no audit records.
        """
        records = []
        with open(self.path(thread_id), encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    records.append({"event": "unreadable", "line": number, "text": line[:200]})
        return records

    def threads(self) -> list[str]:
        """Return the thread ids that have audit records, most recently written first."""
        if not self.folder.is_dir():
            return []
        files = sorted(self.folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [file.stem for file in files]


def _bounded(args: Any) -> Any:
    """Keep arguments readable in the log: long strings are cut with a note."""
    if isinstance(args, dict):
        return {key: _bounded(value) for key, value in args.items()}
    if isinstance(args, list):
        return [_bounded(value) for value in args]
    if isinstance(args, str) and len(args) > _MAX_ARG_CHARS:
        return args[:_MAX_ARG_CHARS] + f"... [{len(args) - _MAX_ARG_CHARS} more characters]"
    return args
