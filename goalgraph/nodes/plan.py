"""plan: turn the goal into a few steps with tools, dependencies and success criteria."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from goalgraph.hints import tool_hints
from goalgraph.nodes.common import changing_tools, goal_problem, new_counters, recall_for
from goalgraph.nodes.think import FINAL_ANSWER
from goalgraph.plan import (
    add_cued_steps,
    drop_unasked_changes,
    fallback_plan,
    next_step_id,
    plan_schema,
    steps_from_output,
)
from goalgraph.profiles import PROFILES, ModelProfile
from goalgraph.prompts import (
    FIRST_CALL_INSTRUCTIONS,
    PLAN_INSTRUCTIONS,
    PLAN_SCOPE,
    plan_examples,
    render_tool_catalog,
)
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState
from goalgraph.tool_order import by_relevance

__all__ = ["make_plan_node", "plan_messages"]

log = logging.getLogger(__name__)

EXAMPLES_SHOWN = 1
"""Planning examples shown under ``plan_examples``: one, the one most related to the goal; the
bundled model copies the tool of the nearest example, and several made it pick the wrong one."""


def plan_messages(
    goal: str,
    tools: Sequence[BaseTool],
    *,
    recalled: str = "",
    profile: ModelProfile = PROFILES["standard"],
) -> list[BaseMessage]:
    """Return the planner's prompt for ``goal`` with ``tools`` available, under ``profile``.

    What memory ``recalled`` goes in the user turn, not the system turn, so the system turn (and
    its cached prefix) stays the same from run to run.
    """
    examples = ""
    if profile.plan_examples:
        examples = "".join(
            f"\nExample goal: {example_goal}\nExample plan: {example_plan}"
            for example_goal, example_plan in plan_examples(goal, tools, limit=EXAMPLES_SHOWN)
        )
    shown = by_relevance(goal, tools) if profile.rank_tools else tools
    system = PLAN_INSTRUCTIONS.format(
        tools=render_tool_catalog(shown),
        examples=examples,
        max_steps=profile.max_plan_steps,
        scope=PLAN_SCOPE if profile.plan_scope else "",
    )
    remembered = f"What you remember:\n{recalled}\n\n" if recalled else ""
    return [SystemMessage(system), HumanMessage(f"{remembered}Goal: {goal}")]


def example_steps(goal: str, tools: Sequence[BaseTool]) -> list[str]:
    """Return the step descriptions of the planning examples ``plan_messages`` shows for
    ``goal``: a small model sometimes copies one word for word instead of planning."""
    return [
        step["description"]
        for _, example_plan in plan_examples(goal, tools, limit=EXAMPLES_SHOWN)
        for step in json.loads(example_plan)["steps"]
    ]


async def first_call_tool(
    res: AgentResources, tools: Sequence[BaseTool], goal_turn: BaseMessage
) -> str | None:
    """Return the tool of the model's first call on the goal, in its native tool format (the
    ``plan_first_call`` profile rule), or ``None``: no tool is needed, or the model failed."""
    try:
        bound = (await res.achat_model()).bind_tools([*tools, FINAL_ANSWER], tool_choice="any")
        message = await bound.ainvoke([SystemMessage(FIRST_CALL_INSTRUCTIONS), goal_turn])
    except Exception as exc:  # The plan is then decoded without it.
        log.warning("the first call before planning failed (%s)", exc)
        return None
    calls = getattr(message, "tool_calls", None) or []
    names = {tool.name for tool in tools}
    return calls[0]["name"] if calls and calls[0]["name"] in names else None


def make_plan_node(res: AgentResources) -> Any:
    """Build the plan node over ``res``."""

    async def plan(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Validate the goal, then ask the model for a plan under the plan schema."""
        fresh: dict[str, Any] = {
            "plan": [],
            "current_step": None,
            "proposed_action": None,
            "verdict": None,
            "status": "running",
            "status_reason": "",
            "answer": None,
            "counters": new_counters(),
            "call_counts": {},
            "tool_counts": {},
            "call_times": [],
            "tainted_by": None,
            "failure_counts": res.earlier_failures(),
            "stalled_attempts": 0,
            "summary": "",
            "recalled": "",
            "route": "",
            "feedback": "",
            "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES)],
        }
        goal = state.get("goal")
        problem = goal_problem(goal, res.spec.limits.max_goal_chars)
        if problem:
            return {**fresh, "status": "failed", "status_reason": problem}
        assert isinstance(goal, str)
        try:
            toolset = await res.toolset()
        except Exception as exc:  # A tool server that will not start ends the run cleanly.
            return {**fresh, "status": "failed", "status_reason": f"tools unavailable: {exc}"}
        names = [tool.name for tool in toolset.tools]
        recalled = await recall_for(res, goal)
        profile = await res.aprofile()
        if profile.plan_directly:
            return {**fresh, "plan": fallback_plan(goal), "current_step": 1, "recalled": recalled}
        prompt = plan_messages(goal, toolset.tools, recalled=recalled, profile=profile)
        most = profile.max_plan_steps
        first = None
        if profile.plan_first_call:
            first = await first_call_tool(res, toolset.tools, prompt[-1])
        try:
            planner = (await res.achat_model()).with_structured_output(
                plan_schema(names, max_steps=most, first_tool=first)
            )
            hints = tool_hints(toolset.tools)
            steps = steps_from_output(
                await planner.ainvoke(prompt),
                tool_names=names,
                goal=goal if profile.restate_statements else None,
                hints=hints,
                copied=example_steps(goal, toolset.tools) if profile.plan_examples else (),
                max_steps=most,
            )
            if profile.cued_steps:  # Not for the fallback plan: it already pursues the goal.
                steps = add_cued_steps(steps, goal, hints, max_steps=most)
            if profile.drop_unasked_changes:
                steps = drop_unasked_changes(steps, goal, await changing_tools(res))
            note = ""
        except Exception as exc:  # The model degrades to a one-step plan, never crashes the run.
            log.warning("planner failed (%s); pursuing the goal as one step", exc)
            steps = fallback_plan(goal)
            note = f"planner failed ({type(exc).__name__}: {exc}); using a one-step plan"
        return {
            **fresh,
            "plan": steps,
            "current_step": next_step_id(steps),
            "feedback": note,
            "recalled": recalled,
        }

    return plan
