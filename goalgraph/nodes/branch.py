"""branch: one plan step worked on beside others, as a subgraph of the agent graph.

```
START → think → safety_check ─allow→ act → reflect ─continue→ think
          │            └─block──────────→ reflect ─next / replan / end→ finish → END
          ├─step_done / final_answer─────→ reflect
          └─context over budget→ summarize_memory → think
```

When ``limits.max_parallel_steps`` is above 1 and several steps are ready (pending, their
dependencies done), ``fan_out`` sends each to this subgraph (LangGraph ``Send``): each runs the
seven nodes' own think, safety_check, act and reflect on its step, and ``finish`` reports what it
did and used; the ``join`` node merges the reports before the steps that depend on them.

The branches of one fan-out span the run's limits together: think reserves its turn and
safety_check its call in the fan-out's in-flight ledger (``goalgraph.inflight``), and both check
the branch's own state plus what its siblings reserved first.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from goalgraph.inflight import inflight_of
from goalgraph.nodes.common import Node, any_allowed, new_counters, thread_id_of, timed
from goalgraph.nodes.think import limit_stop
from goalgraph.plan import ready_steps
from goalgraph.resources import AgentResources
from goalgraph.safety import call_signature
from goalgraph.state import (
    AgentState,
    BranchResult,
    Counters,
    Fork,
    PlanStep,
    turn_actions,
    turn_verdicts,
)

__all__ = ["branch_input", "fan_out", "fork_id", "make_branch_graph", "make_branch_node"]


def fork_id(config: RunnableConfig, key: str) -> str:
    """Return the in-flight ledger's name for fan-out ``key`` of the run under ``config``."""
    return f"{thread_id_of(config)}|{key}"


def fan_out(state: AgentState, res: AgentResources) -> list[Send]:
    """Return one ``Send`` per ready step (at most ``limits.max_parallel_steps``), or ``[]``
    when fewer than two steps are ready or parallel steps are off."""
    most = res.spec.limits.max_parallel_steps
    if most < 2 or state.get("status", "running") != "running":
        return []
    ready = ready_steps(state.get("plan") or [])[:most]
    if len(ready) < 2:
        return []
    counters = state.get("counters") or new_counters()
    key = f"{counters['steps']}.{counters['replans']}:{'-'.join(map(str, ready))}"
    return [Send("branch", branch_input(state, step_id, key)) for step_id in ready]


def branch_input(state: AgentState, step_id: int, key: str) -> dict[str, Any]:
    """Return the state a branch on step ``step_id`` starts from: the run's, without its
    messages (the plan carries the earlier steps' results), and the ``fork`` it started at."""
    counters = Counters(**(state.get("counters") or new_counters()))
    observations = list(state.get("observations") or [])
    call_counts = dict(state.get("call_counts") or {})
    tool_counts = dict(state.get("tool_counts") or {})
    failure_counts = dict(state.get("failure_counts") or {})
    return {
        "goal": state["goal"],
        "plan": list(state.get("plan") or []),
        "current_step": step_id,
        "proposed_action": None,
        "verdict": None,
        "parallel_actions": [],
        "parallel_verdicts": [],
        "observations": observations,
        "status": "running",
        "status_reason": "",
        "answer": None,
        "counters": counters,
        "call_counts": call_counts,
        "tool_counts": tool_counts,
        "call_times": list(state.get("call_times") or []),
        "tainted_by": state.get("tainted_by"),
        "summary": state.get("summary") or "",
        "recalled": state.get("recalled") or "",
        "route": "",
        "feedback": "",
        "failure_counts": failure_counts,
        "stalled_attempts": state.get("stalled_attempts") or 0,
        "fork": Fork(
            key=key,
            step_id=step_id,
            counters=counters,
            call_counts=call_counts,
            tool_counts=tool_counts,
            failure_counts=failure_counts,
            call_ids=[observation["call_id"] for observation in observations],
        ),
    }


def _spanning_think(res: AgentResources, think: Node) -> Node:
    """Check the step and time limits against the branch plus its siblings' earlier turns."""

    async def think_in_branch(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        fork = state.get("fork")
        assert fork is not None
        ledger, name = inflight_of(res), fork_id(config, fork["key"])
        counters = state.get("counters") or new_counters()
        turn = f"think:{counters['steps']}"
        seq = ledger.reserve(name, fork["step_id"], turn, steps=1)
        others = ledger.before(name, fork["step_id"], seq)
        seen = Counters(**{**counters, "steps": counters["steps"] + others.steps})
        stop = limit_stop(AgentState(**{**state, "counters": seen}), res)
        if stop is not None:
            ledger.release(name, fork["step_id"], turn)
            return stop
        update = await think(state, config)
        if "counters" not in update:  # compaction, not a turn
            ledger.release(name, fork["step_id"], turn)
        return update

    return think_in_branch


def _spanning_safety_check(res: AgentResources, safety_check: Node) -> Node:
    """Check calls against the branch's ledger plus its siblings' earlier calls (loop
    detection, budgets, rate limit); a call that is not allowed gives its place back."""

    async def safety_check_in_branch(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        fork, action = state.get("fork"), state.get("proposed_action")
        assert fork is not None and action is not None and action["tool"] is not None
        actions = turn_actions(state)
        ledger, name = inflight_of(res), fork_id(config, fork["key"])
        traits = await res.tool_traits()
        seqs = [
            ledger.reserve(
                name,
                fork["step_id"],
                proposed["call_id"],
                signature=call_signature(proposed["tool"] or "", proposed["args"], traits),
                tool=proposed["tool"] or "",
                at=time.time(),
            )
            for proposed in actions
        ]
        others = ledger.before(name, fork["step_id"], seqs[0])
        view = {
            **state,
            "call_counts": dict(others.call_counts + _counter(state.get("call_counts"))),
            "tool_counts": dict(others.tool_counts + _counter(state.get("tool_counts"))),
            "call_times": [*(state.get("call_times") or []), *others.call_times],
        }
        # An approval interrupt leaves the places reserved: the calls may still run.
        update = await safety_check(AgentState(**view), config)  # type: ignore[typeddict-item]
        for proposed, verdict in zip(actions, turn_verdicts(update), strict=False):
            if verdict is None or verdict["decision"] != "allow":
                ledger.release(name, fork["step_id"], proposed["call_id"])
        return update

    return safety_check_in_branch


def _counter(counts: dict[str, int] | None) -> Counter[str]:
    return Counter(counts or {})


async def finish(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
    """Report the branch's step, outcome and what it used (the difference from its fork)."""
    fork = state.get("fork")
    assert fork is not None
    step = next(s for s in state.get("plan") or [] if s["id"] == fork["step_id"])
    counters, start = state.get("counters") or new_counters(), fork["counters"]
    used = Counters(
        steps=counters["steps"] - start["steps"],
        replans=0,
        tool_calls=counters["tool_calls"] - start["tool_calls"],
        blocked=counters["blocked"] - start["blocked"],
        elapsed_s=round(counters["elapsed_s"] - start["elapsed_s"], 4),
    )
    failures = _added(state.get("failure_counts"), fork["failure_counts"])
    known = set(fork["call_ids"])
    times = list(state.get("call_times") or [])
    result = BranchResult(
        key=fork["key"],
        step=PlanStep(**step),
        route=state.get("route") or "",
        status=state.get("status", "running"),
        status_reason=state.get("status_reason") or "",
        answer=state.get("answer"),
        feedback=state.get("feedback") or "",
        used=used,
        call_counts=_added(state.get("call_counts"), fork["call_counts"]),
        tool_counts=_added(state.get("tool_counts"), fork["tool_counts"]),
        failure_counts=failures,
        call_times=times[len(times) - used["tool_calls"] :] if used["tool_calls"] else [],
        stalled=0 if step["status"] == "done" else sum(failures.values()),
        tainted_by=state.get("tainted_by"),
        observations=[o for o in state.get("observations") or [] if o["call_id"] not in known],
        messages=list(state.get("messages") or []),
        proposed_action=state.get("proposed_action"),
        verdict=state.get("verdict"),
    )
    return {"branch_results": [result]}


def _added(now: dict[str, int] | None, before: dict[str, int]) -> dict[str, int]:
    """Return how much each count grew since ``before``."""
    return {
        key: count - before.get(key, 0)
        for key, count in (now or {}).items()
        if count > before.get(key, 0)
    }


def _after_think(state: AgentState) -> str:
    if state.get("status", "running") != "running":
        return "finish"
    if state.get("route") == "compact":
        return "summarize_memory"
    action = state.get("proposed_action")
    return "safety_check" if action is not None and action["kind"] == "tool" else "reflect"


def _after_safety(state: AgentState) -> str:
    return "act" if any_allowed(state) else "reflect"


def _after_reflect(state: AgentState) -> str:
    running = state.get("status", "running") == "running"
    return "think" if running and state.get("route") == "continue" else "finish"


def make_branch_graph(res: AgentResources, nodes: dict[str, Node]) -> CompiledStateGraph[Any]:
    """Compile the branch subgraph over the agent's own (untimed) ``nodes``."""
    builder = StateGraph(AgentState)
    builder.add_node("think", cast(Any, timed(_spanning_think(res, nodes["think"]))))
    builder.add_node(
        "safety_check", cast(Any, timed(_spanning_safety_check(res, nodes["safety_check"])))
    )
    builder.add_node("act", cast(Any, timed(nodes["act"])))
    builder.add_node("reflect", cast(Any, timed(nodes["reflect"])))
    builder.add_node("summarize_memory", cast(Any, timed(nodes["summarize_memory"])))
    builder.add_node("finish", finish)
    builder.add_edge(START, "think")
    builder.add_conditional_edges(
        "think", _after_think, ["safety_check", "reflect", "summarize_memory", "finish"]
    )
    builder.add_conditional_edges("safety_check", _after_safety, ["act", "reflect"])
    builder.add_edge("act", "reflect")
    builder.add_conditional_edges("reflect", _after_reflect, ["think", "finish"])
    builder.add_edge("summarize_memory", "think")
    builder.add_edge("finish", END)
    return builder.compile(name="branch")


def make_branch_node(res: AgentResources, nodes: dict[str, Node]) -> Node:
    """Build the branch node: it runs the branch subgraph on the state ``fan_out`` sent, under
    the run's config, so the subgraph checkpoints in the run's checkpointer under its task's
    namespace (approvals pause and resume inside it, and its nodes stream their updates), and
    hands back only its result."""
    subgraph = make_branch_graph(res, nodes)

    async def branch(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Work on one step beside others; return its ``BranchResult`` for the join."""
        values = await subgraph.ainvoke(state, config)
        return {"branch_results": list(values.get("branch_results") or [])}

    return branch
