"""Wire the seven nodes into the agent graph; routing lives here as small named functions.

```
START → plan → think → safety_check ─allow→ act → reflect ─continue/next→ think
                  │            └─block──────────────→ reflect ─replan→ replan → think
                  │                              replan found no other way─→ summarize_memory
                  ├─step_done / final_answer────────→ reflect ─end→ summarize_memory → END
                  └─context over budget→ summarize_memory → think
```
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from goalgraph.nodes.act import make_act_node
from goalgraph.nodes.common import new_counters
from goalgraph.nodes.plan import make_plan_node
from goalgraph.nodes.reflect import make_reflect_node
from goalgraph.nodes.replan import make_replan_node
from goalgraph.nodes.safety_check import make_safety_check_node
from goalgraph.nodes.summarize_memory import make_summarize_memory_node
from goalgraph.nodes.think import make_think_node
from goalgraph.resources import AgentResources, ToolSet
from goalgraph.spec import AgentSpec
from goalgraph.state import AgentState, InputState, OutputState

__all__ = [
    "NODES",
    "build_graph",
    "graph",
    "route_after_plan",
    "route_after_reflect",
    "route_after_replan",
    "route_after_safety",
    "route_after_summary",
    "route_after_think",
]

NODES = ("plan", "think", "safety_check", "act", "reflect", "replan", "summarize_memory")

Node = Callable[[AgentState, RunnableConfig], Awaitable[dict[str, Any]]]


def _running(state: AgentState) -> bool:
    return state.get("status", "running") == "running"


def route_after_plan(state: AgentState) -> str:
    """Start thinking, unless the plan node already ended the run (bad goal, no tools)."""
    return "think" if _running(state) else "summarize_memory"


def route_after_think(state: AgentState) -> str:
    """Send a tool call to safety_check, other decisions to reflect, and compaction to memory."""
    if not _running(state) or state.get("route") == "compact":
        return "summarize_memory"
    action = state.get("proposed_action")
    if action is not None and action["kind"] == "tool":
        return "safety_check"
    return "reflect"


def route_after_safety(state: AgentState) -> str:
    """Run an allowed call; let reflect account for a blocked one."""
    verdict = state.get("verdict")
    return "act" if verdict is not None and verdict["decision"] == "allow" else "reflect"


def route_after_reflect(state: AgentState) -> str:
    """Follow reflect's decision: keep thinking, replan, or wrap up."""
    route = state.get("route")
    if route == "replan":
        return "replan"
    if route == "end" or not _running(state):
        return "summarize_memory"
    return "think"


def route_after_replan(state: AgentState) -> str:
    """Think about the revised plan, unless replan ended the run (it found no other way)."""
    return "think" if _running(state) else "summarize_memory"


def route_after_summary(state: AgentState) -> str:
    """Return to think after a mid-run compaction; otherwise the run is over."""
    return "think" if _running(state) else END


def _timed(node: Node) -> Node:
    """Add the node's wall time to ``counters.elapsed_s`` (the time limit's clock)."""

    @functools.wraps(node)
    async def timed(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        started = time.perf_counter()
        update = await node(state, config)
        counters = dict(update.get("counters") or state.get("counters") or new_counters())
        counters["elapsed_s"] = round(counters["elapsed_s"] + time.perf_counter() - started, 4)
        return {**update, "counters": counters}

    return timed


def build_graph(
    spec: AgentSpec | None = None,
    *,
    model: BaseChatModel | None = None,
    tools: Sequence[BaseTool] | ToolSet | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    resources: AgentResources | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the agent graph.

    Args:
        spec: The agent configuration; defaults to ``AgentSpec()`` (bundled model, own tools).
        model: A chat model to use instead of the spec's (e.g. ``goalgraph.testing``'s).
        tools: LangChain tools or a ``ToolSet`` to use instead of the spec's MCP servers.
        checkpointer: Where to checkpoint; ``None`` compiles without one (as Studio wants).
        store: A LangGraph store; finished runs are written to it as episodes.
        resources: Pre-built resources (overrides ``spec``, ``model`` and ``tools``).

    Returns:
        The compiled graph. Its resources open lazily on first use; ``graph.resources`` holds
        them so the caller can ``await graph.resources.aclose()``.
    """
    res = resources or AgentResources(spec or AgentSpec(), model=model, tools=tools)
    builder = StateGraph(AgentState, input_schema=InputState, output_schema=OutputState)
    factories = {
        "plan": make_plan_node,
        "think": make_think_node,
        "safety_check": make_safety_check_node,
        "act": make_act_node,
        "reflect": make_reflect_node,
        "replan": make_replan_node,
        "summarize_memory": make_summarize_memory_node,
    }
    for name in NODES:
        builder.add_node(name, cast(Any, _timed(factories[name](res))))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route_after_plan, ["think", "summarize_memory"])
    builder.add_conditional_edges(
        "think", route_after_think, ["safety_check", "reflect", "summarize_memory"]
    )
    builder.add_conditional_edges("safety_check", route_after_safety, ["act", "reflect"])
    builder.add_edge("act", "reflect")
    builder.add_conditional_edges(
        "reflect", route_after_reflect, ["think", "replan", "summarize_memory"]
    )
    builder.add_conditional_edges("replan", route_after_replan, ["think", "summarize_memory"])
    builder.add_conditional_edges("summarize_memory", route_after_summary, ["think", END])
    compiled = builder.compile(checkpointer=checkpointer, store=store, name="goalgraph")
    compiled.resources = res  # type: ignore[attr-defined]
    return compiled


graph = build_graph()
"""The default agent, without a checkpointer, for ``langgraph.json`` (``langgraph dev``)."""
