"""replan: replace the failed step and the steps after it with a revised plan.

A revised plan whose next step is the failed step again (``goalgraph.progress.repeated_step``)
would meet the same failure, and one that only redoes done steps (``redone_steps``) drops what
the goal still needs, so neither is accepted: the model is asked once more, told what it
repeated. After a second repeat, under the ``direct_fallback`` profile rule, the rest of the goal
becomes one step the model works on with any tool, as a ReAct agent would; without the rule, or
when that step was already the goal itself, the run ends as ``failed`` ("no progress: ...").
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from goalgraph.hints import tool_hints
from goalgraph.nodes.common import bump, changing_tools, current_step
from goalgraph.plan import (
    drop_unasked_changes,
    fallback_plan,
    is_fallback_step,
    next_step_id,
    plan_schema,
    render_plan,
    steps_from_output,
)
from goalgraph.progress import (
    NO_PROGRESS,
    FailedCall,
    describe_call,
    redone_steps,
    repeated_step,
)
from goalgraph.prompts import REPLAN_INSTRUCTIONS, render_tool_catalog
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState, Observation, PlanStep, turn_actions, turn_verdicts
from goalgraph.tool_order import by_relevance

__all__ = [
    "failed_call_errors",
    "failed_calls",
    "make_replan_node",
    "redo_feedback",
    "repeat_feedback",
]

log = logging.getLogger(__name__)


def failed_calls(state: AgentState, step_id: int | None) -> list[FailedCall]:
    """Return the calls that failed on step ``step_id``: its failed observations, and the last
    proposed calls the policy or a human blocked (blocked calls leave no observation)."""
    calls = [FailedCall(o["tool"], o["args"]) for o in _failed_observations(state, step_id)]
    for action, verdict in zip(turn_actions(state), turn_verdicts(state), strict=False):
        blocked = verdict is not None and verdict["decision"] == "block"
        if action["tool"] and blocked:
            calls.append(FailedCall(action["tool"], action["args"]))
    return calls


def failed_call_errors(state: AgentState, step_id: int | None) -> str:
    """Return one ``- tool(args): error`` line per distinct call that failed on step ``step_id``.

    The replanner needs each error itself: the last feedback may only say that a repeat was
    blocked, while the error often names the way out ("did you mean 'archive/report.txt'?").
    """
    lines: dict[str, str] = {}
    for observation in _failed_observations(state, step_id):
        call = describe_call(observation["tool"], observation["args"])
        lines[call] = f"- {call}: {observation['content'][:300]}"
    return "\n".join(lines.values())


def _failed_observations(state: AgentState, step_id: int | None) -> list[Observation]:
    """Return the observations of the calls that ran on step ``step_id`` and failed."""
    observations = state.get("observations") or []
    return [o for o in observations if o["step_id"] == step_id and not o["ok"]]


def repeat_feedback(repeat: PlanStep, failed: PlanStep, why: str) -> str:
    """Tell the replanner that its plan repeated the failed step, and what to do instead."""
    tool = f" with {failed['tool']}" if failed["tool"] else ""
    return (
        f"Your new plan starts with step {failed['id']} again ({repeat['description']!r}{tool}), "
        f"which failed ({why}). Do not repeat it: use another tool, other values, or other steps."
    )


def redo_feedback(redone: list[PlanStep]) -> str:
    """Tell the replanner that its plan only redid done steps, and what to write instead."""
    ids = ", ".join(str(step_id) for step_id in dict.fromkeys(step["id"] for step in redone))
    return (
        f"Your new plan only repeats step {ids}, which is done: its result is in the plan. "
        "Write the steps the goal still needs."
    )


def make_replan_node(res: AgentResources) -> Any:
    """Build the replan node over ``res``."""

    async def revised_steps(
        state: AgentState, prompt: list[BaseMessage], names: list[str], old: list[PlanStep]
    ) -> list[PlanStep]:
        """Ask the model for new steps after ``old``; the goal as one step if that fails."""
        first_id = _first_new_id(old)
        done_ids = [step["id"] for step in old if step["status"] == "done"]
        profile = await res.aprofile()
        try:
            planner = (await res.achat_model()).with_structured_output(
                plan_schema(names, max_steps=profile.max_plan_steps)
            )
            steps = steps_from_output(
                await planner.ainvoke(prompt),
                first_id=first_id,
                known_ids=done_ids,
                tool_names=names,
                goal=state["goal"] if profile.restate_statements else None,
                hints=tool_hints((await res.toolset()).tools),
                max_steps=profile.max_plan_steps,
            )
            if profile.drop_unasked_changes:
                steps = drop_unasked_changes(
                    steps, state["goal"], await changing_tools(res), first_id=first_id
                )
            return steps
        except Exception as exc:  # Degrade to pursuing the goal directly.
            log.warning("replanner failed (%s); pursuing the goal as one step", exc)
            return fallback_plan(state["goal"], first_id=first_id)

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
        why = state.get("feedback") or "unknown"
        request = f"Goal: {state['goal']}\nPlan so far:\n{render_plan(old)}\n"
        request += f"Why step {failed_id} failed: {why}"
        errors = failed_call_errors(state, failed_id)
        if errors:
            request += "\nCalls of that step that failed:\n" + errors
        profile = await res.aprofile()
        shown = by_relevance(state["goal"], toolset.tools) if profile.rank_tools else toolset.tools
        prompt: list[BaseMessage] = [
            SystemMessage(REPLAN_INSTRUCTIONS.format(tools=render_tool_catalog(shown))),
            HumanMessage(request),
        ]
        new_steps = await revised_steps(state, prompt, names, old)
        failed = current_step(old, failed_id)
        calls = failed_calls(state, failed_id)

        def no_progress(steps: list[PlanStep]) -> str | None:
            """What makes ``steps`` no way forward, as feedback for the replanner."""
            if failed is None:
                return None
            repeat = repeated_step(steps, failed, calls)
            if repeat is not None:
                return repeat_feedback(repeat, failed, why)
            redone = redone_steps(steps, old)
            return redo_feedback(redone) if redone else None

        feedback = no_progress(new_steps)
        if feedback is not None and failed is not None:  # Once more, told what it repeated.
            log.info("the revised plan after step %s makes no progress; asking again", failed_id)
            prompt[-1] = HumanMessage(f"{request}\n{feedback}")
            new_steps = await revised_steps(state, prompt, names, old)
            if no_progress(new_steps) is not None:
                if profile.direct_fallback and not is_fallback_step(failed, state["goal"]):
                    log.info("the planner found no other way; pursuing the goal as one step")
                    new_steps = fallback_plan(state["goal"], first_id=_first_new_id(old))
                    # A fresh start: quoted, the failed call is what a small model copies.
                    return {**_with_steps(state, old, new_steps), "feedback": ""}
                return {
                    "plan": old,
                    "current_step": None,
                    "counters": bump(state, replans=1),
                    "route": "end",
                    "status": "failed",
                    "status_reason": _no_other_way(
                        failed, calls, why, redid=repeated_step(new_steps, failed, calls) is None
                    ),
                }
        return _with_steps(state, old, new_steps)

    return replan


def _first_new_id(old: list[PlanStep]) -> int:
    """Return the id of the first step a revised plan adds after ``old``."""
    return max((step["id"] for step in old), default=0) + 1


def _with_steps(
    state: AgentState, old: list[PlanStep], new_steps: list[PlanStep]
) -> dict[str, Any]:
    """Return the replan's update: ``new_steps`` after the ``old`` plan, the next step to run."""
    plan = old + new_steps
    return {
        "plan": plan,
        "current_step": next_step_id(plan),
        "counters": bump(state, replans=1),
        "route": "",
    }


def _no_other_way(
    failed: PlanStep, calls: list[FailedCall], why: str, *, redid: bool = False
) -> str:
    tool = f" with {failed['tool']}" if failed["tool"] else ""
    last = f", last call {describe_call(calls[-1].tool, calls[-1].args)}" if calls else ""
    revised = "the revised plan only redid done steps" if redid else "the revised plan repeated it"
    return (
        f"{NO_PROGRESS}the agent could not find another way to do step {failed['id']} "
        f"({failed['description'][:120]!r}{tool}): {revised} twice"
        f"{last}; it failed with: {why[:300]}"
    )
