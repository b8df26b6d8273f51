"""The in-flight ledger of branches that run side by side: what each has reserved so far.

Branches of one fan-out each carry a copy of the run's counters, so on their own each could spend
the whole budget. Before a branch thinks or runs a call it reserves it here, and it checks the
limits against its own state plus what its siblings reserved *before* it: the reservations form
one order, so the checks see what a one-at-a-time run in that order would have seen, and k
branches can never each take the last unit of a budget. A blocked or denied call is released.

The ledger lives in the process (one per ``AgentResources``); the join merges the branches' own
states and drops it. A run resumed in another process starts its fan-out's ledger afresh, so
siblings that had finished before the crash count again only from the join on.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InFlight", "Usage", "inflight_of"]


@dataclass
class Usage:
    """What other branches reserved: think turns and tool calls."""

    steps: int = 0
    """Think turns."""
    call_counts: Counter[str] = field(default_factory=Counter)
    """Reserved calls by ``call_signature``."""
    tool_counts: Counter[str] = field(default_factory=Counter)
    """Reserved calls by tool."""
    call_times: list[float] = field(default_factory=list)
    """When the reserved calls were made."""


@dataclass(frozen=True)
class _Entry:
    seq: int
    branch: int
    steps: int
    signature: str | None
    tool: str | None
    at: float | None


class InFlight:
    """The reservations of every fan-out under way in one process, by fan-out."""

    def __init__(self) -> None:
        """Start empty."""
        self._forks: dict[str, dict[tuple[int, str], _Entry]] = {}
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def reserve(
        self,
        fork: str,
        branch: int,
        key: str,
        *,
        steps: int = 0,
        signature: str | None = None,
        tool: str | None = None,
        at: float | None = None,
    ) -> int:
        """Reserve a think turn (``steps``) or a call for ``branch``; return its place in the order.

        Reserving the same ``key`` again (a node re-run on resume) keeps the first place.
        """
        with self._lock:
            entries = self._forks.setdefault(fork, {})
            found = entries.get((branch, key))
            if found is None:
                found = _Entry(next(self._seq), branch, steps, signature, tool, at)
                entries[(branch, key)] = found
            return found.seq

    def release(self, fork: str, branch: int, key: str) -> None:
        """Withdraw a reservation (a call that was blocked, a turn that did not happen)."""
        with self._lock:
            self._forks.get(fork, {}).pop((branch, key), None)

    def before(self, fork: str, branch: int, seq: int) -> Usage:
        """Return what the other branches of ``fork`` reserved before place ``seq``."""
        usage = Usage()
        with self._lock:
            entries = list(self._forks.get(fork, {}).values())
        for entry in entries:
            if entry.branch == branch or entry.seq >= seq:
                continue
            usage.steps += entry.steps
            if entry.signature is not None and entry.tool is not None:
                usage.call_counts[entry.signature] += 1
                usage.tool_counts[entry.tool] += 1
            if entry.at is not None:
                usage.call_times.append(entry.at)
        return usage

    def drop(self, fork: str) -> None:
        """Forget a fan-out once its branches have joined."""
        with self._lock:
            self._forks.pop(fork, None)


_LEDGERS: weakref.WeakKeyDictionary[Any, InFlight] = weakref.WeakKeyDictionary()
_LEDGERS_LOCK = threading.Lock()


def inflight_of(owner: Any) -> InFlight:
    """Return the in-flight ledger of ``owner`` (an ``AgentResources``), made on first use."""
    with _LEDGERS_LOCK:
        found = _LEDGERS.get(owner)
        if found is None:
            found = _LEDGERS[owner] = InFlight()
        return found
