"""The graph memory's SQLite schema, created on first open and versioned by ``user_version``.

Tables: ``meta`` (counters), ``sessions`` and ``turns`` (the episodes), ``entities`` with
``aliases``, ``mentions`` (which turn names which entity), ``facts`` (edges with validity and
supersession) with ``fact_sources`` (provenance), ``profile``, and ``runs`` (episodic memory of
finished agent runs). ``turns``, ``facts`` and ``runs`` have FTS5 indexes kept in step by
triggers.
"""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA_VERSION", "create_schema"]

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    at REAL NOT NULL,
    expires_at REAL,
    metadata TEXT,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS turns_session ON turns(session_id, seq);
CREATE INDEX IF NOT EXISTS turns_expiry ON turns(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS entities (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities(rowid) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS aliases_entity ON aliases(entity_id);
CREATE TABLE IF NOT EXISTS mentions (
    turn_rowid INTEGER NOT NULL REFERENCES turns(rowid) ON DELETE CASCADE,
    entity_id INTEGER NOT NULL REFERENCES entities(rowid) ON DELETE CASCADE,
    PRIMARY KEY (turn_rowid, entity_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_entity ON mentions(entity_id);
CREATE TABLE IF NOT EXISTS facts (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    subject_id INTEGER NOT NULL REFERENCES entities(rowid) ON DELETE CASCADE,
    predicate TEXT NOT NULL,
    object_id INTEGER REFERENCES entities(rowid) ON DELETE SET NULL,
    object TEXT NOT NULL,
    object_key TEXT NOT NULL,
    text TEXT NOT NULL,
    valid_at REAL,
    invalid_at REAL,
    created_at REAL NOT NULL,
    expires_at REAL,
    superseded_by TEXT,
    negation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS facts_subject ON facts(subject_id, predicate);
CREATE INDEX IF NOT EXISTS facts_object ON facts(object_id);
CREATE INDEX IF NOT EXISTS facts_expiry ON facts(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS fact_sources (
    rowid INTEGER PRIMARY KEY,
    fact_id TEXT NOT NULL REFERENCES facts(id) ON DELETE CASCADE,
    turn_id TEXT NOT NULL,
    UNIQUE (fact_id, turn_id)
);
CREATE INDEX IF NOT EXISTS fact_sources_turn ON fact_sources(turn_id);
CREATE TABLE IF NOT EXISTS profile (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL,
    PRIMARY KEY (user_id, key)
);
CREATE TABLE IF NOT EXISTS runs (
    rowid INTEGER PRIMARY KEY,
    goal TEXT NOT NULL,
    status TEXT NOT NULL,
    answer TEXT,
    plan TEXT,
    lessons TEXT,
    thread_id TEXT,
    finished_at REAL NOT NULL,
    embedding BLOB
);
"""


def _fts(table: str, columns: str) -> str:
    """Return DDL for an external-content FTS5 index on ``table`` with sync triggers."""
    cols = [c.strip() for c in columns.split(",")]
    new = ", ".join(f"new.{c}" for c in cols)
    old = ", ".join(f"old.{c}" for c in cols)
    return f"""
CREATE VIRTUAL TABLE IF NOT EXISTS {table}_fts USING fts5(
    {columns}, content='{table}', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS {table}_fts_insert AFTER INSERT ON {table} BEGIN
    INSERT INTO {table}_fts(rowid, {columns}) VALUES (new.rowid, {new});
END;
CREATE TRIGGER IF NOT EXISTS {table}_fts_delete AFTER DELETE ON {table} BEGIN
    INSERT INTO {table}_fts({table}_fts, rowid, {columns}) VALUES ('delete', old.rowid, {old});
END;
CREATE TRIGGER IF NOT EXISTS {table}_fts_update AFTER UPDATE OF {columns} ON {table} BEGIN
    INSERT INTO {table}_fts({table}_fts, rowid, {columns}) VALUES ('delete', old.rowid, {old});
    INSERT INTO {table}_fts(rowid, {columns}) VALUES (new.rowid, {new});
END;
"""


def create_schema(db: sqlite3.Connection) -> None:
    """Create the tables, indexes and triggers if missing; refuse a newer schema.

    Raises:
        sqlite3.DatabaseError: The file is not a database, or was written by a newer goalgraph.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this goalgraph understands ({SCHEMA_VERSION})"
        )
    if version == SCHEMA_VERSION:
        return
    db.executescript(
        "BEGIN IMMEDIATE;"
        + _TABLES
        + _fts("turns", "speaker, text")
        + _fts("facts", "text")
        + _fts("runs", "goal, lessons")
        + f"PRAGMA user_version = {SCHEMA_VERSION};"
        + "COMMIT;"
    )
