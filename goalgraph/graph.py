"""Wire the seven nodes into the agent graph; routing lives here as small named functions.

```
START → plan → think → safety_check ─allow→ act → reflect ─continue/next→ think
                  │            └─block──────────────→ reflect ─replan→ replan → think
                  │                              replan found no other way─→ summarize_memory
                  ├─step_done / final_answer────────→ reflect ─end→ summarize_memory → END
                  └─context over budget→ summarize_memory → think
```

With ``limits.max_parallel_steps`` above 1, wherever the run would go on to think about the next
step (after plan, replan, a completed step, or a join) and several steps are ready, it fans out
instead: ``Send`` runs each ready step in a ``branch`` subgraph (``goalgraph.nodes.branch``),
and ``join`` merges them before the steps that depend on them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Send

from goalgraph.nodes.act import make_act_node
from goalgraph.nodes.branch import fan_out, make_branch_node
from goalgraph.nodes.common import Node, any_allowed, timed
from goalgraph.nodes.join import make_join_node
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
    "fanning_out",
    "graph",
    "route_after_join",
    "route_after_plan",
    "route_after_reflect",
    "route_after_replan",
    "route_after_safety",
    "route_after_summary",
    "route_after_think",
]

NODES = ("plan", "think", "safety_check", "act", "reflect", "replan", "summarize_memory")


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
    """Run the allowed calls; let reflect account for a turn whose calls were all blocked."""
    return "act" if any_allowed(state) else "reflect"


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


def route_after_join(state: AgentState) -> str:
    """After parallel steps: replan a failed one, wrap up an ended run, or think on."""
    if state.get("route") == "replan" and _running(state):
        return "replan"
    if state.get("route") == "end" or not _running(state):
        return "summarize_memory"
    return "think"


def fanning_out(
    route: Callable[[AgentState], str], res: AgentResources
) -> Callable[[AgentState], str | list[Send]]:
    """Wrap ``route`` so that where it goes on to a new step's ``think``, several ready steps
    go to ``branch`` side by side instead (``fan_out``); a retry on the same step does not."""

    def routed(state: AgentState) -> str | list[Send]:
        target = route(state)
        if target == "think" and state.get("route", "") in ("", "next"):
            return fan_out(state, res) or target
        return target

    routed.__name__ = route.__name__
    routed.__doc__ = route.__doc__
    return routed


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
    nodes: dict[str, Node] = {name: factories[name](res) for name in NODES}
    for name in NODES:
        builder.add_node(name, cast(Any, timed(nodes[name])))
    builder.add_node("branch", cast(Any, make_branch_node(res, nodes)))
    builder.add_node("join", cast(Any, timed(make_join_node(res))))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges(
        "plan", fanning_out(route_after_plan, res), ["think", "branch", "summarize_memory"]
    )
    builder.add_conditional_edges(
        "think", route_after_think, ["safety_check", "reflect", "summarize_memory"]
    )
    builder.add_conditional_edges("safety_check", route_after_safety, ["act", "reflect"])
    builder.add_edge("act", "reflect")
    builder.add_conditional_edges(
        "reflect",
        fanning_out(route_after_reflect, res),
        ["think", "branch", "replan", "summarize_memory"],
    )
    builder.add_conditional_edges(
        "replan", fanning_out(route_after_replan, res), ["think", "branch", "summarize_memory"]
    )
    builder.add_edge("branch", "join")
    builder.add_conditional_edges(
        "join",
        fanning_out(route_after_join, res),
        ["think", "branch", "replan", "summarize_memory"],
    )
    builder.add_conditional_edges("summarize_memory", route_after_summary, ["think", END])
    compiled = builder.compile(checkpointer=checkpointer, store=store, name="goalgraph")
    compiled.resources = res  # type: ignore[attr-defined]
    return compiled


graph = build_graph()
"""The default agent, without a checkpointer, for ``langgraph.json`` (``langgraph dev``)."""
