"""goalgraph: an autonomous, goal-driven agent on LangGraph that runs offline on a bundled model.

Names are imported on first use, so that goalgraph's MCP server process (``python -m
goalgraph.tools.server``) starts without loading LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goalgraph.agent import Agent, HistoryEntry, RunResult
    from goalgraph.events import AgentEvent
    from goalgraph.graph import build_graph
    from goalgraph.spec import AgentSpec, SpecError
    from goalgraph.teams import Team, TeamResult

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentSpec",
    "HistoryEntry",
    "RunResult",
    "SpecError",
    "Team",
    "TeamResult",
    "build_graph",
]

_HOMES = {
    "Agent": "agent",
    "HistoryEntry": "agent",
    "RunResult": "agent",
    "AgentEvent": "events",
    "build_graph": "graph",
    "AgentSpec": "spec",
    "SpecError": "spec",
    "Team": "teams",
    "TeamResult": "teams",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'goalgraph' has no attribute {name!r}")
    return getattr(importlib.import_module(f"goalgraph.{_HOMES[name]}"), name)
