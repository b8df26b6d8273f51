"""Turn embeddings held in memory for exact cosine search, kept in step with the database."""

from __future__ import annotations

import sqlite3

import numpy as np

__all__ = ["VectorIndex", "deletion_count"]


class VectorIndex:
    """Turn embeddings held in memory for exact cosine search, refreshed from the database.

    A refresh costs two indexed lookups when nothing changed: the highest turn rowid, and the
    count of deletions kept in ``meta``. New turns are appended; any deletion (by this process or
    another) reloads the whole index. At 100,000 turns the matrix is 154 MB.
    """

    def __init__(self) -> None:
        self.rowids = np.zeros(0, dtype="int64")
        self.matrix = np.zeros((0, 0), dtype="float32")
        self._seen: tuple[int, int] = (0, -1)

    def refresh(self, db: sqlite3.Connection) -> None:
        """Bring the index up to date with the turns table."""
        top = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM turns").fetchone()[0]
        deletions = deletion_count(db)
        if (top, deletions) == self._seen:
            return
        seen_top, seen_deletions = self._seen
        since = seen_top if deletions == seen_deletions else 0
        rows = db.execute(
            "SELECT rowid, embedding FROM turns WHERE embedding IS NOT NULL AND rowid > ?"
            " ORDER BY rowid",
            (since,),
        ).fetchall()
        rowids = np.array([row[0] for row in rows], dtype="int64")
        if rows:
            matrix = np.stack([np.frombuffer(row[1], dtype="float32") for row in rows])
        else:
            matrix = np.zeros((0, self.matrix.shape[1]), dtype="float32")
        if since and len(self.rowids):
            self.rowids = np.concatenate([self.rowids, rowids])
            self.matrix = np.concatenate([self.matrix, matrix])
        else:
            self.rowids, self.matrix = rowids, matrix
        self._seen = (top, deletions)

    def nearest(self, vector: np.ndarray, limit: int) -> list[int]:
        """Return the rowids of the ``limit`` turns most similar to ``vector``, best first."""
        if not len(self.rowids):
            return []
        similarity = self.matrix @ vector
        limit = min(limit, len(similarity))
        top = np.argpartition(-similarity, limit - 1)[:limit]
        top = top[np.argsort(-similarity[top])]
        return [int(rowid) for rowid in self.rowids[top]]


def deletion_count(db: sqlite3.Connection) -> int:
    """Return how many times turns were deleted from this database (by any process)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'turn_deletions'").fetchone()
    return int(row[0]) if row else 0
