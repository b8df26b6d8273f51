"""Order a tool catalog by relevance to a goal, most relevant first (the ``rank_tools`` rule).

A small model asked for a plan walks the catalog it is shown, in the order it is shown:
Qwen2.5-Coder-0.5B planned stockroom goals as the inventory server's first five tools in the
server's order (search, get, adjust stock, set price, ...), whatever the goal asked. The order a
server lists its tools in says nothing about a goal, so the planner and the replanner may be shown
the tools sorted by MiniLM's cosine similarity between the goal and each tool's name and
description (the score the tool gate uses, ``goalgraph.policies.tool_gate``). No tool is left
out; only the order changes.

Example:
    >>> [tool.name for tool in by_relevance("Has order SO-1002 shipped?", tools)]  # doctest: +SKIP
    ['get_order', 'list_orders', 'search_products', ...]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.tools import BaseTool

from goalgraph.embeddings import minilm_available
from goalgraph.policies.tool_gate import ToolGate

__all__ = ["by_relevance"]

log = logging.getLogger(__name__)


def by_relevance(
    text: str, tools: Sequence[BaseTool], *, gate: ToolGate | None = None
) -> list[BaseTool]:
    """Return ``tools`` sorted by similarity to ``text``, most similar first; ties keep the
    server's order. Without the MiniLM package (or if embedding fails) the order is unchanged."""
    if len(tools) < 2:
        return list(tools)
    if gate is None and not minilm_available():
        return list(tools)
    described = [{"name": tool.name, "description": tool.description or ""} for tool in tools]
    try:
        scores = (gate or ToolGate()).scores(text, described)
    except Exception as exc:  # An unrankable catalog is still a catalog.
        log.warning("could not rank the tools by relevance (%s); keeping their order", exc)
        return list(tools)
    ranked = sorted(range(len(tools)), key=lambda index: -scores[index])
    return [tools[index] for index in ranked]
