"""What every team pattern's nodes share: running a member within the budget, timing, the goal."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Overwrite

from goalgraph.nodes.common import goal_problem, new_counters
from goalgraph.teams.budget import TeamLimits, budget_of_run
from goalgraph.teams.members import Member, member_goal, member_run
from goalgraph.teams.state import MemberRun, TeamBudget, TeamState, no_budget

__all__ = ["TeamNode", "check_goal", "run_in_team", "timed", "used_budget"]

TeamNode = Callable[[TeamState, RunnableConfig], Awaitable[dict[str, Any]]]


def used_budget(state: TeamState) -> TeamBudget:
    """Return what the team has used so far."""
    return state.get("budget") or no_budget()


async def run_in_team(
    member: Member,
    subgraph: CompiledStateGraph[Any, Any, Any, Any],
    task: str,
    state: TeamState,
    limits: TeamLimits,
    config: RunnableConfig,
    *,
    context: str = "",
    share: int = 1,
    used: TeamBudget | None = None,
    **where: int,
) -> tuple[MemberRun, TeamBudget]:
    """Run ``member``'s ``subgraph`` on ``task``, within what is left of the team's budget.

    The node that calls this names ``member.graph`` itself: LangGraph finds a node's subgraph
    among the values its code reaches, which is how Studio draws it and ``get_state`` reads it.

    ``share`` members start together and split what is left; ``used`` overrides the state's
    budget (for a node that starts a fresh run). The member's run starts with the failures the
    team has seen (``TeamBudget.failures``), so the no-progress check spans the team. Returns the
    run's record and what it used, including the failures it added.
    When the budget is spent the member does not start and its run is ``stopped_limit``.
    """
    allowance = limits.allowance(used or used_budget(state), share=share)
    if isinstance(allowance, str):
        stopped = MemberRun(
            agent=member.name,
            task=task,
            status="stopped_limit",
            reason=allowance,
            answer=None,
            counters=new_counters(),
            **where,  # type: ignore[typeddict-item]
        )
        return stopped, no_budget()
    goal = member_goal(member, task, context)
    failures = (used or used_budget(state)).get("failures") or {}
    values, counters, added = await member.run(
        goal, allowance, config, graph=subgraph, failures=failures
    )
    spent = budget_of_run(counters)
    if added:
        spent["failures"] = added
    return member_run(member.name, task, values, counters, **where), spent


def timed(node: TeamNode) -> TeamNode:
    """Add a team node's own wall time (a planning or judging model call) to the budget.

    Member nodes are not wrapped: their member's counters already hold their time.
    """

    @functools.wraps(node)
    async def timed_node(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        started = time.perf_counter()
        update = await node(state, config)
        budget = update.get("budget")
        elapsed = round(time.perf_counter() - started, 4)
        if budget is None:
            update["budget"] = {**no_budget(), "elapsed_s": elapsed}
        elif isinstance(budget, dict):
            update["budget"] = {**budget, "elapsed_s": budget["elapsed_s"] + elapsed}
        else:  # An Overwrite that starts a fresh run's budget.
            value = budget.value
            update["budget"] = Overwrite({**value, "elapsed_s": value["elapsed_s"] + elapsed})
        return update

    return timed_node


def check_goal(state: TeamState, max_chars: int) -> str | None:
    """Return why the team's goal cannot be pursued, or ``None``."""
    return goal_problem(state.get("goal"), max_chars)
