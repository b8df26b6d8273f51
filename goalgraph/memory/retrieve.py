"""Ranking and packing for graph memory: pure functions over ids and scores, no database.

Search fuses several rankings of the same turns (BM25 through FTS5, MiniLM similarity, facts
pointing at their source turns) with reciprocal-rank fusion, spreads part of each turn's score to
its neighbours in the conversation (an answer usually sits next to its question), then packs the
best facts and turns into the token budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from goalgraph.memory.types import (
    CountTokens,
    Fact,
    StoredTurn,
    render_context,
    render_fact,
    render_turn,
    render_turn_header,
)

__all__ = [
    "RRF_K",
    "STOPWORDS",
    "fts_query",
    "pack_context",
    "query_terms",
    "reciprocal_rank_fusion",
    "spread_to_neighbours",
]

RRF_K = 60
"""Reciprocal-rank fusion's constant (Cormack et al. 2009): rank r scores ``1 / (RRF_K + r)``."""

_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"\w+")
Key = TypeVar("Key", bound=Hashable)


def query_terms(text: str) -> list[str]:
    """Return the distinct lower-case content words of ``text``, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)


def fts_query(text: str, *, without: Iterable[str] = ()) -> str | None:
    """Build an FTS5 ``MATCH`` expression that ORs the quoted content words of ``text``.

    Quoting makes every word a plain string, so user text can never inject FTS5 syntax. Words in
    ``without`` are left out. Returns ``None`` when nothing is left to search for.
    """
    skip = set(without)
    terms = [term for term in query_terms(text) if term not in skip]
    return " OR ".join(f'"{term}"' for term in terms) if terms else None


def reciprocal_rank_fusion(
    rankings: Iterable[Sequence[Key]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> dict[Key, float]:
    """Fuse rankings (best first) into one score per key: the sum of ``weight / (k + rank)``."""
    fused: dict[Key, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if weights else 1.0
        for rank, key in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused


def spread_to_neighbours(
    scores: Mapping[Key, float],
    neighbours: Callable[[Key], Iterable[Key]],
    *,
    share: float = 0.3,
) -> dict[Key, float]:
    """Give every key ``share`` of its best-scoring neighbour's score, on top of its own."""
    bonus: dict[Key, float] = {}
    for key, score in scores.items():
        for other in neighbours(key):
            bonus[other] = max(bonus.get(other, 0.0), score)
    spread = dict(scores)
    for key, best in bonus.items():
        spread[key] = spread.get(key, 0.0) + share * best
    return spread


@dataclass(frozen=True)
class _Item:
    score: float
    fact: Fact | None = None
    turn: StoredTurn | None = None


def pack_context(
    facts: Sequence[tuple[float, Fact]],
    turns: Sequence[tuple[float, StoredTurn]],
    *,
    budget_tokens: int,
    count_tokens: CountTokens,
    fact_share: float = 0.25,
) -> tuple[tuple[Fact, ...], tuple[StoredTurn, ...], int]:
    """Pick the best facts and turns whose rendered context fits ``budget_tokens``.

    Facts and turns compete in one ranking, best first; facts may take at most ``fact_share``
    of the budget (they are dense, but turns carry the detail). A turn costs its line plus its
    session's header the first time that session appears. The rendered text is counted again at
    the end and the weakest item dropped until it fits, so the result never exceeds the budget.

    Returns:
        The chosen facts and turns, best first, and the tokens their rendering costs.
    """
    ranked = [_Item(score, fact=fact) for score, fact in facts]
    ranked += [_Item(score, turn=turn) for score, turn in turns]
    ranked.sort(key=lambda item: -item.score)
    chosen: list[_Item] = []
    used = fact_used = 0
    fact_budget = int(budget_tokens * fact_share)
    sessions: set[str] = set()
    for item in ranked:
        if item.fact is not None:
            cost = count_tokens(render_fact(item.fact))
            if fact_used + cost > fact_budget or used + cost > budget_tokens:
                continue
            fact_used += cost
        else:
            assert item.turn is not None
            cost = count_tokens(render_turn(item.turn))
            if item.turn.session_id not in sessions:
                cost += count_tokens(render_turn_header(item.turn))
            if used + cost > budget_tokens:
                continue
            sessions.add(item.turn.session_id)
        chosen.append(item)
        used += cost
    while chosen:
        kept_facts = tuple(item.fact for item in chosen if item.fact is not None)
        kept_turns = tuple(item.turn for item in chosen if item.turn is not None)
        tokens = count_tokens(render_context(kept_facts, kept_turns))
        if tokens <= budget_tokens:
            return kept_facts, kept_turns, tokens
        chosen.remove(min(chosen, key=lambda item: item.score))
    return (), (), 0
