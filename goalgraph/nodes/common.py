"""Small helpers shared by the nodes."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from goalgraph.memory.recall import recall, remember_run
from goalgraph.state import AgentState, Counters, PlanStep, turn_verdicts

if TYPE_CHECKING:
    from goalgraph.resources import AgentResources

__all__ = [
    "Node",
    "any_allowed",
    "bump",
    "changing_tools",
    "current_step",
    "goal_problem",
    "new_counters",
    "recall_for",
    "remember_for",
    "thread_id_of",
    "timed",
]

log = logging.getLogger(__name__)

Node = Callable[[AgentState, RunnableConfig], Awaitable[dict[str, Any]]]
"""A graph node: the state and the run's config in, a state update out."""


def timed(node: Node) -> Node:
    """Add the node's wall time to ``counters.elapsed_s`` (the time limit's clock)."""

    @functools.wraps(node)
    async def timed_node(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        started = time.perf_counter()
        update = await node(state, config)
        counters = dict(update.get("counters") or state.get("counters") or new_counters())
        counters["elapsed_s"] = round(counters["elapsed_s"] + time.perf_counter() - started, 4)
        return {**update, "counters": counters}

    return timed_node


def any_allowed(state: AgentState) -> bool:
    """Tell whether safety_check allowed at least one of the turn's calls (act runs those)."""
    return any(v is not None and v["decision"] == "allow" for v in turn_verdicts(state))


def new_counters() -> Counters:
    """Return all-zero counters for a fresh run."""
    return Counters(steps=0, replans=0, tool_calls=0, blocked=0, elapsed_s=0.0)


def bump(state: AgentState, **increments: int) -> Counters:
    """Return the state's counters with ``increments`` added."""
    counters: dict[str, Any] = dict(state.get("counters") or new_counters())
    for name, amount in increments.items():
        counters[name] = counters[name] + amount
    return Counters(**counters)  # type: ignore[typeddict-item]


def current_step(plan: Sequence[PlanStep], step_id: int | None) -> PlanStep | None:
    """Return the step with id ``step_id``, or ``None``."""
    return next((step for step in plan if step["id"] == step_id), None)


def goal_problem(goal: object, max_chars: int) -> str | None:
    """Return why ``goal`` cannot be pursued, or ``None`` when it is usable."""
    if not isinstance(goal, str):
        return f"the goal must be text, not {type(goal).__name__}"
    if not goal.strip():
        return "the goal is empty: say what the agent should achieve"
    if len(goal) > max_chars:
        return (
            f"the goal is {len(goal):,} characters long; the limit is {max_chars:,} "
            "(limits.max_goal_chars). Put long material in a workspace file and refer to it."
        )
    return None


def thread_id_of(config: RunnableConfig) -> str:
    """Return the run's thread id (``default`` when run without a checkpointer)."""
    return str((config.get("configurable") or {}).get("thread_id") or "default")


async def changing_tools(res: AgentResources) -> set[str]:
    """Return the names of the tools whose risk class is ``write``: they change things."""
    return {name for name, traits in (await res.tool_traits()).items() if traits.risk == "write"}


async def recall_for(res: AgentResources, goal: str) -> str:
    """Return what long-term memory recalls for ``goal`` for the prompts; ``""`` when memory is
    off, reaches the model only as a tool (``memory.recall``), or fails.

    Memory is an aid, not a dependency: an error is logged and the run goes on without it.
    """
    budget = res.spec.memory.context_tokens
    if budget <= 0:
        return ""
    await res.aprofile()  # auto recall follows the profile, which may need the model loaded
    if not res.recalls_into_prompt():
        return ""
    memory = await asyncio.to_thread(res.memory)
    if memory is None:
        return ""
    try:
        return await asyncio.to_thread(recall, memory, goal, budget_tokens=budget)
    except Exception as exc:
        log.warning("memory recall failed (%s: %s); planning without it", type(exc).__name__, exc)
        return ""


async def remember_for(res: AgentResources, state: Mapping[str, Any], thread_id: str) -> None:
    """Keep a finished run in long-term memory; a failure is logged, never raised."""
    memory = await asyncio.to_thread(res.memory)
    if memory is None:
        return
    try:
        await asyncio.to_thread(remember_run, memory, state, thread_id)
    except Exception as exc:
        log.warning("could not keep the run in memory (%s: %s)", type(exc).__name__, exc)
