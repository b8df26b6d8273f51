"""plan: turn the goal into a few steps with tools, dependencies and success criteria."""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import HumanMessage, RemoveMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from goalgraph.nodes.common import goal_problem, new_counters
from goalgraph.plan import fallback_plan, next_step_id, plan_schema, steps_from_output
from goalgraph.prompts import PLAN_INSTRUCTIONS, example_plan_json, render_tool_catalog
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState

__all__ = ["make_plan_node"]

log = logging.getLogger(__name__)


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
            "summary": "",
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
        prompt = [
            SystemMessage(
                PLAN_INSTRUCTIONS.format(
                    tools=render_tool_catalog(toolset.tools), example=example_plan_json()
                )
            ),
            HumanMessage(f"Goal: {goal}"),
        ]
        try:
            planner = res.chat_model().with_structured_output(plan_schema(names))
            steps = steps_from_output(await planner.ainvoke(prompt), tool_names=names)
            note = ""
        except Exception as exc:  # The model degrades to a one-step plan, never crashes the run.
            log.warning("planner failed (%s); pursuing the goal as one step", exc)
            steps = fallback_plan(goal)
            note = f"planner failed ({type(exc).__name__}: {exc}); using a one-step plan"
        return {**fresh, "plan": steps, "current_step": next_step_id(steps), "feedback": note}

    return plan
