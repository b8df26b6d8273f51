"""goalgraph: an autonomous, goal-driven agent on LangGraph that runs offline on a bundled model."""

from goalgraph.agent import Agent, HistoryEntry, RunResult
from goalgraph.events import AgentEvent
from goalgraph.graph import build_graph
from goalgraph.spec import AgentSpec, SpecError

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentSpec",
    "HistoryEntry",
    "RunResult",
    "SpecError",
    "build_graph",
]
