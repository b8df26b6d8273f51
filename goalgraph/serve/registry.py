"""The durable task registry: one SQLite row per task, so that a restarted server knows its tasks.

The checkpoints hold each run's state; this table holds what only the server knows about a task:
who owns it, its goal, and its last status and message. ``TaskManager`` writes a row on every
status change, committed before the change is visible through the API, so a task that a client
saw accepted survives a crash (WAL; ``synchronous=NORMAL`` loses nothing on a process crash, only
possibly the last commits on a power loss).

Example:
    >>> registry = TaskRegistry("/tmp/tasks.sqlite")             # doctest: +SKIP
    >>> [record.status for record in registry.load()]
    ['done', 'running']
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RegistryError", "TaskRecord", "TaskRegistry", "registry_path_for"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    owner TEXT,
    goal TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""


class RegistryError(RuntimeError):
    """The task registry file cannot be used; it was left as it is."""


@dataclass(frozen=True)
class TaskRecord:
    """One task as stored: what a restarted server needs to bring it back."""

    id: str
    owner: str | None
    goal: str
    status: str
    message: str
    created_at: float
    updated_at: float


def registry_path_for(checkpoint_path: str | Path) -> Path:
    """Return the registry file kept beside a SQLite checkpoint file: ``<file>.tasks.sqlite``."""
    path = Path(checkpoint_path)
    return path.with_name(f"{path.name}.tasks.sqlite")


class TaskRegistry:
    """A SQLite table of tasks; every write is committed before it returns.

    Writes are small and synchronous (well under a millisecond with WAL), so the server calls
    them from its event loop; a lock makes the object safe from other threads too.
    """

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the registry at ``path``.

        Raises:
            RegistryError: if the file is not a usable SQLite database.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)
            self._conn.execute("SELECT count(*) FROM tasks").fetchone()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise RegistryError(
                f"the task registry {self.path} is unreadable ({exc}). It was left untouched; "
                "move it aside to start with no tasks, or pass another registry path."
            ) from None

    def save(self, record: TaskRecord) -> None:
        """Insert or replace ``record`` (the whole row)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO tasks (id, owner, goal, status, message, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "status = excluded.status, message = excluded.message, "
                "updated_at = excluded.updated_at",
                (
                    record.id,
                    record.owner,
                    record.goal,
                    record.status,
                    record.message,
                    record.created_at,
                    record.updated_at,
                ),
            )

    def load(self) -> list[TaskRecord]:
        """Return every task, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, owner, goal, status, message, created_at, updated_at "
                "FROM tasks ORDER BY created_at, rowid"
            ).fetchall()
        return [TaskRecord(*row) for row in rows]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()
