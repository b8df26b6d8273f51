"""The values that flow in and out of every memory backend.

Times are timezone-aware ``datetime`` objects in UTC at this boundary; backends store them however
suits them. Every fact keeps the ids of the turns it came from (its provenance), and nothing is ever
overwritten: a contradicting newer fact sets ``invalid_at`` on the old one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CountTokens",
    "Fact",
    "MemoryBackendError",
    "MemoryContext",
    "MemoryCorruptError",
    "RunRecord",
    "StoredTurn",
    "Turn",
    "approx_tokens",
    "utc",
    "utcnow",
]

CountTokens = Callable[[str], int]
"""Counts the tokens of a text; memory packs its context to a budget with it."""


class MemoryBackendError(RuntimeError):
    """Memory cannot be read or written; the message says what to do."""


class MemoryCorruptError(MemoryBackendError):
    """The memory database is damaged; it is left untouched for the user to inspect."""


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def utc(value: datetime | float | str | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (naive datetimes are taken to be UTC).

    Accepts a datetime, POSIX seconds or an ISO 8601 string; ``None`` stays ``None``.
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def approx_tokens(text: str) -> int:
    """Estimate tokens without a tokenizer: one token per 1.3 words, LoCoMo's convention."""
    return math.ceil(len(text.split()) / 1.3)


@dataclass(frozen=True)
class Turn:
    """One message of an episode, as given to ``add_episode``."""

    text: str
    """What was said."""
    speaker: str = "user"
    """Who said it: a person's name, or ``user`` / ``assistant`` / ``tool`` / ``document``."""
    id: str | None = None
    """A stable id; the backend makes one when it is missing."""
    at: datetime | None = None
    """When it was said; defaults to the episode's time."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (JSON-serialisable)."""


@dataclass(frozen=True)
class StoredTurn:
    """A turn as memory holds it, returned by search."""

    id: str
    """The turn id, which facts cite as their source."""
    session_id: str
    """The session (conversation, document or run) it belongs to."""
    speaker: str
    """Who said it."""
    text: str
    """What was said."""
    at: datetime
    """When it was said."""
    seq: int = 0
    """Its position in the session."""
    score: float = 0.0
    """Retrieval score; larger is more relevant (only meaningful within one search)."""


@dataclass(frozen=True)
class Fact:
    """A relation between two entities that held over a span of time."""

    id: str
    """The fact id."""
    subject: str
    """The entity the fact is about (its canonical name)."""
    predicate: str
    """The relation, lower case with underscores (``lives_in``, ``works_at``)."""
    object: str
    """The other entity, or a value."""
    text: str
    """The fact as one sentence."""
    valid_at: datetime | None
    """When it became true, if known."""
    invalid_at: datetime | None
    """When it stopped being true; ``None`` while it still holds."""
    created_at: datetime
    """When memory learned it."""
    sources: tuple[str, ...] = ()
    """Ids of the turns it was extracted from."""
    expires_at: datetime | None = None
    """When memory forgets it (TTL); ``None`` keeps it."""
    superseded_by: str | None = None
    """The id of the newer fact that invalidated it, if any."""

    def holds_at(self, when: datetime) -> bool:
        """Tell whether the fact was true at ``when``."""
        started = self.valid_at is None or self.valid_at <= when
        return started and (self.invalid_at is None or when < self.invalid_at)


@dataclass(frozen=True)
class RunRecord:
    """One finished agent run, kept as episodic memory (Reflexion-style lessons included)."""

    goal: str
    """What the user asked for."""
    status: str
    """How it ended: done, failed, stopped_limit, ..."""
    answer: str = ""
    """The final answer, or the reason it stopped."""
    plan: tuple[str, ...] = ()
    """The plan's step descriptions, with the tool each one used."""
    lessons: tuple[str, ...] = ()
    """What to do differently next time (or what worked), one sentence each."""
    thread_id: str = ""
    """The checkpoint thread, so the run can be inspected."""
    finished_at: datetime = field(default_factory=utcnow)
    """When the run ended."""
    score: float = 0.0
    """Similarity to the goal searched for (only set by ``similar_runs``)."""


@dataclass(frozen=True)
class MemoryContext:
    """What a search found, already packed to the token budget it was given."""

    facts: tuple[Fact, ...] = ()
    """Facts that hold (or held, for historical questions), most relevant first."""
    turns: tuple[StoredTurn, ...] = ()
    """Turns, most relevant first."""
    tokens: int = 0
    """Tokens ``render()`` costs, counted with the search's counter."""

    def render(self) -> str:
        """Render as prompt text: facts with their validity, then turns grouped by session."""
        return render_context(self.facts, self.turns)

    def __bool__(self) -> bool:
        return bool(self.facts or self.turns)


def render_fact(fact: Fact) -> str:
    """Render one fact as a line: its sentence and, when known, the span it held."""
    span = ""
    if fact.valid_at or fact.invalid_at:
        start = f"{fact.valid_at:%Y-%m-%d}" if fact.valid_at else "?"
        end = f"{fact.invalid_at:%Y-%m-%d}" if fact.invalid_at else "now"
        span = f" ({start} to {end})"
    return f"- {fact.text}{span}"


def render_turn_header(turn: StoredTurn) -> str:
    """Render the header that opens a run of turns from one session."""
    return f"[{turn.session_id}, {turn.at:%d %B %Y}]"


def render_turn(turn: StoredTurn) -> str:
    """Render one turn as ``speaker: text``."""
    return f"{turn.speaker}: {turn.text}"


def render_context(facts: tuple[Fact, ...], turns: tuple[StoredTurn, ...]) -> str:
    """Render facts and turns as prompt text (turns grouped by session, sessions in time order)."""
    lines: list[str] = []
    if facts:
        lines.append("Facts:")
        lines.extend(render_fact(fact) for fact in facts)
    by_session: dict[str, list[StoredTurn]] = {}
    for turn in sorted(turns, key=lambda t: (t.at, t.seq)):
        by_session.setdefault(turn.session_id, []).append(turn)
    if by_session:
        if lines:
            lines.append("")
        lines.append("Conversation excerpts:")
    for session_turns in by_session.values():
        lines.append(render_turn_header(session_turns[0]))
        lines.extend(render_turn(turn) for turn in session_turns)
    return "\n".join(lines)
