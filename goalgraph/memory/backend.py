"""``MemoryBackend``: the one interface to long-term memory (agent, CLI and MCP tool alike).

Two implementations: ``GraphMemory``, the embedded default (a temporal knowledge graph in SQLite),
and ``ZepMemory`` (a Zep server through ``zep-python``). Methods are synchronous; the graph's nodes
call them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from goalgraph.memory.types import Fact, MemoryContext, RunRecord, Turn

__all__ = ["MemoryBackend"]


@runtime_checkable
class MemoryBackend(Protocol):
    """Long-term memory: episodes in, facts and turns with provenance out."""

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

        Args:
            turns: The messages, in order.
            session_id: The conversation, document or run they belong to.
            at: When the episode happened (default now); turns without a time take it.
            source: What produced it: ``message``, ``document`` or ``run``.
            ttl_s: Forget the turns and the facts learned from them after this many seconds.

        Returns:
            The stored turn ids, in order.
        """
        ...

    def search(
        self,
        query: str,
        *,
        budget_tokens: int = 512,
        session_id: str | None = None,
        at: datetime | None = None,
    ) -> MemoryContext:
        """Find the facts and turns most relevant to ``query``, packed to ``budget_tokens``.

        Args:
            query: A question or a goal.
            budget_tokens: The most tokens the rendered context may cost.
            session_id: Search only this session.
            at: Return facts as they stood at this time (default: those that hold now).
        """
        ...

    def facts(
        self, *, subject: str | None = None, include_invalid: bool = False, limit: int = 100
    ) -> list[Fact]:
        """List facts, newest first, about ``subject`` (any alias) or about anything."""
        ...

    def get_profile(self, user_id: str = "default") -> dict[str, str]:
        """Return the profile of ``user_id`` (unexpired entries only)."""
        ...

    def set_profile(
        self, key: str, value: str, *, user_id: str = "default", ttl_s: float | None = None
    ) -> None:
        """Set one profile entry; an empty value removes it."""
        ...

    def forget(
        self,
        *,
        fact_id: str | None = None,
        session_id: str | None = None,
        entity: str | None = None,
    ) -> int:
        """Delete a fact, a whole session (its turns and the facts learned only from them), or
        every fact about an entity. Returns how many records went."""
        ...

    def sweep(self, now: datetime | None = None) -> int:
        """Delete everything whose TTL has passed; return how many records went."""
        ...

    def record_run(self, run: RunRecord) -> None:
        """Keep a finished run (goal, plan, outcome, lessons) as episodic memory."""
        ...

    def similar_runs(self, goal: str, *, limit: int = 3) -> list[RunRecord]:
        """Return past runs whose goals resemble ``goal``, most similar first."""
        ...

    def close(self) -> None:
        """Release connections; the object cannot be used afterwards."""
        ...
