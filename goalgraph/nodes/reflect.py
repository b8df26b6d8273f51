"""reflect: judge the last action deterministically and choose the route.

Rules, in order:

* ``final_answer`` with text ends the run as ``done``.
* ``step_done`` completes the current step with the given result.
* When the last step completes and the last step's result is the answer (``spec.final_answer``,
  else the model's profile), the run is ``done``; otherwise think is asked for ``final_answer``.
* A successful tool call completes the current step when the step names that tool or no tool
  (one call per step, which suits small models); otherwise the agent continues on the step.
  The goal as one step (``plan.fallback_plan``: the planner failed, the replanner found no
  other way, or the ``plan_directly`` profile rule) is the exception: it takes as many calls as
  the goal needs, until the model calls ``step_done`` or ``final_answer``, as a ReAct agent does.
* Several calls made in one turn (``limits.max_parallel_calls``) are judged together: if all
  worked, they complete the step as one call would (the step's result lists each call's
  output); if any failed, the turn is a failed attempt on the first failure.
* A failure (tool error, block, denial, model failure) counts an attempt on the step; after
  ``limits.max_step_attempts`` the agent replans, unless the replan budget is spent.
* Before that, a failure that shows the run makes no progress (``goalgraph.progress``: the same
  failing call seen ``limits.max_repeated_failures`` times, or ``limits.max_stalled_attempts``
  failed attempts with no step completed) ends the run as ``failed``, "no progress: ...".

A failed call's note names the value its error lists that the call clearly meant, when the
error does not already (``goalgraph.recovery``): "did you mean sku='knob-walnut'?".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig

from goalgraph.nodes.common import current_step
from goalgraph.plan import is_fallback_step, next_step_id
from goalgraph.progress import failure_key, no_progress_reason
from goalgraph.recovery import with_listed_alternative
from goalgraph.resources import AgentResources
from goalgraph.risk import ToolTraits
from goalgraph.safety import call_signature
from goalgraph.state import (
    AgentState,
    Observation,
    PlanStep,
    ProposedAction,
    Verdict,
    turn_actions,
    turn_verdicts,
)

__all__ = ["make_reflect_node"]


def make_reflect_node(res: AgentResources) -> Any:
    """Build the reflect node over ``res``."""
    limits = res.spec.limits

    def complete_step(state: AgentState, result: str) -> dict[str, Any]:
        steps = _with_result(state, state.get("current_step") or 0, result)
        following = next_step_id(steps)
        update = {
            "plan": steps,
            "current_step": following,
            "route": "next",
            "feedback": "",
            "stalled_attempts": 0,
        }
        if following is None and res.answers_from_last_step():
            return {
                **update,
                "route": "end",
                "status": "done",
                "answer": result,
                "status_reason": "goal reached (the answer is the last step's result)",
            }
        return update

    def failed_attempt(
        state: AgentState,
        reason: str,
        *,
        tool: str | None = None,
        args: Mapping[str, Any] | None = None,
        error: str | None = None,
        path_args: Sequence[str] = (),
    ) -> dict[str, Any]:
        failures = dict(state.get("failure_counts") or {})
        key = failure_key(tool, args, error or reason, path_args)
        failures[key] = failures.get(key, 0) + 1
        stalled = (state.get("stalled_attempts") or 0) + 1
        stuck = no_progress_reason(
            repeats=failures[key],
            max_repeats=limits.max_repeated_failures,
            stalled=stalled,
            max_stalled=limits.max_stalled_attempts,
            tool=tool,
            args=args,
            error=error or reason,
        )
        plan: list[dict[str, Any]] = [dict(step) for step in state.get("plan") or []]
        step = next((s for s in plan if s["id"] == state.get("current_step")), None)
        progress = {"failure_counts": failures, "stalled_attempts": stalled, "feedback": reason}
        if step is not None:
            step["attempts"] += 1
            progress["plan"] = plan
        if stuck is not None:
            if step is not None:
                step["status"] = "failed"
            return {**progress, "route": "end", "status": "failed", "status_reason": stuck}
        if step is None:  # Answering after the last step: the step and no-progress limits bound it.
            return {**progress, "route": "continue"}
        update: dict[str, Any] = {**progress, "route": "continue"}
        if step["attempts"] < limits.max_step_attempts:
            return update
        counters = state.get("counters")
        replans = counters["replans"] if counters else 0
        if replans < limits.max_replans:
            return {**update, "route": "replan"}
        step["status"] = "failed"
        return {
            **update,
            "route": "end",
            "status": "stopped_limit",
            "status_reason": (
                f"step {step['id']} failed {step['attempts']} times and the replan limit "
                f"({limits.max_replans}, limits.max_replans) is used up; last error: {reason}"
            ),
        }

    async def reflect(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Update the plan from the last action's outcome and set ``route``."""
        action = state.get("proposed_action")
        if action is None:
            return failed_attempt(state, state.get("feedback") or "the model gave no action")
        if action["kind"] == "final_answer":
            if not action["text"]:
                return failed_attempt(state, "the final answer was empty")
            done = {
                "status": "done",
                "status_reason": "goal reached",
                "answer": action["text"],
                "route": "end",
            }
            step = current_step(state.get("plan") or [], state.get("current_step"))
            if step is not None and is_fallback_step(step, state.get("goal") or ""):
                # The goal as one step is done when the goal is.
                return {**done, "plan": _with_result(state, step["id"], action["text"])}
            return done
        if action["kind"] == "step_done":
            if current_step(state.get("plan") or [], state.get("current_step")) is None:
                return {"route": "continue", "feedback": "all steps are done: give final_answer"}
            return complete_step(state, action["text"] or "done")
        actions, verdicts = turn_actions(state), turn_verdicts(state)
        observations = {o["call_id"]: o for o in state.get("observations") or []}
        traits = await res.tool_traits()
        failures = [
            (proposed, failure)
            for proposed, verdict in zip(actions, verdicts, strict=False)
            if (failure := _failure(proposed, verdict, observations, traits)) is not None
        ]
        if failures:
            proposed, (reason, error) = failures[0]
            if len(failures) < len(actions):
                reason += "; the other calls of that turn worked (their results are above)"
            return failed_attempt(
                state,
                reason,
                tool=proposed["tool"],
                args=proposed["args"],
                error=error,
                path_args=_path_args(traits, proposed["tool"]),
            )
        step = current_step(state.get("plan") or [], state.get("current_step"))
        if step is not None and is_fallback_step(step, state.get("goal") or ""):
            return {"route": "continue", "feedback": "", "stalled_attempts": 0}
        if step is not None and step["tool"] in (None, *(a["tool"] for a in actions)):
            results = [observations[a["call_id"]] for a in actions]
            if len(results) == 1:
                return complete_step(state, results[0]["content"])
            return complete_step(state, "\n".join(f"{o['tool']}: {o['content']}" for o in results))
        return {"route": "continue", "feedback": ""}

    return reflect


def _with_result(state: AgentState, step_id: int, result: str) -> list[PlanStep]:
    """Return the plan with step ``step_id`` done with ``result``."""
    plan: list[dict[str, Any]] = [dict(step) for step in state.get("plan") or []]
    for step in plan:
        if step["id"] == step_id:
            step.update(status="done", result=result)
    return plan  # type: ignore[return-value]


def _failure(
    action: ProposedAction,
    verdict: Verdict | None,
    observations: Mapping[str, Observation],
    traits: Mapping[str, ToolTraits],
) -> tuple[str, str] | None:
    """Return why a tool call failed and the error that identifies the failure (a blocked
    call, a failed run, or no result at all), or ``None`` if it ran and worked."""
    if verdict is not None and verdict["decision"] == "block":
        reason = f"{action['tool']} was blocked: {verdict['reason']}"
        if verdict.get("rule") != "loop":
            return reason, verdict["reason"]
        # A failed call proposed again fails again. Its error, not only the loop, is what the
        # next turn and the replanner need: it often names the way out ("did you mean ...").
        error = _last_error(list(observations.values()), action["tool"], action["args"], traits)
        if error is None:
            return reason, verdict["reason"]
        shown = with_listed_alternative(error, action["args"])
        return f"{reason}; its last run failed with: {shown}", error
    observation = observations.get(action["call_id"])
    if observation is None or not observation["ok"]:
        error = observation["content"] if observation else "the tool call left no result"
        return f"{action['tool']} failed: {with_listed_alternative(error, action['args'])}", error
    return None


def _last_error(
    observations: list[Observation],
    tool: str | None,
    args: Any,
    traits: Mapping[str, ToolTraits],
) -> str | None:
    """Return the error of the latest run of this call (path arguments normalised, as loop
    detection counts them), or ``None`` if it last succeeded."""
    signature = call_signature(tool or "", args, traits)
    for observation in reversed(observations):
        if call_signature(observation["tool"], observation["args"], traits) == signature:
            return None if observation["ok"] else observation["content"]
    return None


def _path_args(traits: Mapping[str, ToolTraits], tool: str | None) -> tuple[str, ...]:
    """Return the workspace-path arguments of ``tool`` (none for an unknown tool)."""
    info = traits.get(tool or "")
    return info.path_args if info is not None else ()
