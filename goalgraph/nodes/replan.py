"""replan: replace the failed step and the steps after it with a revised plan."""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from goalgraph.nodes.common import bump
from goalgraph.plan import fallback_plan, next_step_id, plan_schema, render_plan, steps_from_output
from goalgraph.prompts import REPLAN_INSTRUCTIONS, render_tool_catalog
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState, PlanStep

__all__ = ["make_replan_node"]

log = logging.getLogger(__name__)


def make_replan_node(res: AgentResources) -> Any:
    """Build the replan node over ``res``."""

    async def replan(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Mark the current step failed, skip what is left, and ask the model for new steps."""
        old: list[PlanStep] = [PlanStep(**step) for step in state.get("plan") or []]
        failed_id = state.get("current_step")
        for step in old:
            if step["id"] == failed_id:
                step["status"] = "failed"
            elif step["status"] == "pending":
                step["status"] = "skipped"
        toolset = await res.toolset()
        names = [tool.name for tool in toolset.tools]
        first_id = max((step["id"] for step in old), default=0) + 1
        done_ids = [step["id"] for step in old if step["status"] == "done"]
        prompt = [
            SystemMessage(REPLAN_INSTRUCTIONS.format(tools=render_tool_catalog(toolset.tools))),
            HumanMessage(
                f"Goal: {state['goal']}\nPlan so far:\n{render_plan(old)}\n"
                f"Why step {failed_id} failed: {state.get('feedback') or 'unknown'}"
            ),
        ]
        profile = await res.aprofile()
        try:
            planner = (await res.achat_model()).with_structured_output(
                plan_schema(names, max_steps=profile.max_plan_steps)
            )
            new_steps = steps_from_output(
                await planner.ainvoke(prompt),
                first_id=first_id,
                known_ids=done_ids,
                tool_names=names,
                goal=state["goal"] if profile.restate_statements else None,
                max_steps=profile.max_plan_steps,
            )
        except Exception as exc:  # Degrade to pursuing the goal directly.
            log.warning("replanner failed (%s); pursuing the goal as one step", exc)
            new_steps = fallback_plan(state["goal"], first_id=first_id)
        plan = old + new_steps
        return {
            "plan": plan,
            "current_step": next_step_id(plan),
            "counters": bump(state, replans=1),
            "route": "",
        }

    return replan
