"""act: run the allowed tool calls, screen their output, and record the outcome as an observation.

The output's provenance decides the taint: output from a source the spec does not trust (a
fetched page, an untrusted server's tool) taints the run whatever it says, and so does output
the injection screen flags; once tainted, write, exec and network calls need a human
(``goalgraph.safety``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig

from goalgraph.injection import quote_observation, screen
from goalgraph.nodes.common import bump, thread_id_of
from goalgraph.nodes.safety_check import blocked_message
from goalgraph.recovery import with_echoed_alternative
from goalgraph.resources import ARTIFACTS_FOLDER, AgentResources
from goalgraph.safety import call_signature, output_source, taint_of
from goalgraph.state import AgentState, Observation, ProposedAction, turn_actions, turn_verdicts

__all__ = ["MAX_CALL_TIMES", "make_act_node"]

MAX_CALL_TIMES = 100
"""Call times kept in state for the rate limit (more than any sane per-minute limit)."""


def make_act_node(res: AgentResources) -> Any:
    """Build the act node over ``res``."""

    async def run_call(
        action: ProposedAction, step_id: int | None, config: RunnableConfig
    ) -> _Outcome:
        """Call one tool and screen its output; a failure becomes an ``ok=False`` observation."""
        tool = action["tool"]
        assert tool is not None
        toolset = await res.toolset()
        result = await toolset.call(tool, action["args"], timeout_s=res.tool_timeout(tool))
        if result.ok:
            text = with_echoed_alternative(result.content, action["args"])
        else:
            text = result.error or "tool failed"
        flags = screen(result.content) if res.spec.safety.screen_observations else []
        shown = quote_observation(text, flags)
        source = output_source(
            (await res.tool_traits()).get(tool), action["args"], saved_outputs=ARTIFACTS_FOLDER
        )
        taint = taint_of(tool, action["call_id"], source, flags, res.spec.safety)
        if res.audit is not None:
            await res.audit.awrite(
                thread_id_of(config),
                "result",
                call_id=action["call_id"],
                tool=tool,
                ok=result.ok,
                error=result.error,
                elapsed_s=round(result.elapsed_s, 4),
                output_chars=len(result.content),
                flags=flags,
                source=source,
                taints=taint is not None,
            )
        observation = Observation(
            step_id=step_id,
            call_id=action["call_id"],
            tool=tool,
            args=action["args"],
            ok=result.ok,
            content=shown,
            elapsed_s=round(result.elapsed_s, 4),
            flags=flags,
        )
        message = ToolMessage(
            content=shown if result.ok else f"Error: {shown}",
            tool_call_id=action["call_id"],
            name=tool,
            status="success" if result.ok else "error",
        )
        return _Outcome(observation, message, taint)

    async def act(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Run the allowed calls (at the same time when a turn proposed several) and record
        each outcome; the calls the policy blocked are answered with the reason, in order.

        Each output (already normalised and bounded by the tool set) is screened for prompt
        injection: a flagged output reaches the model fenced as data. A flagged output, or any
        output from an untrusted source, taints the run.
        """
        action = state["proposed_action"]
        assert action is not None and action["tool"] is not None
        actions, verdicts = turn_actions(state), turn_verdicts(state)
        allowed = [
            a
            for a, verdict in zip(actions, verdicts, strict=False)
            if verdict is not None and verdict["decision"] == "allow"
        ]
        outcomes = dict(
            zip(
                [a["call_id"] for a in allowed],
                await asyncio.gather(
                    *(run_call(a, state.get("current_step"), config) for a in allowed)
                ),
                strict=True,
            )
        )
        traits = await res.tool_traits()
        call_counts = dict(state.get("call_counts") or {})
        tool_counts = dict(state.get("tool_counts") or {})
        observations: list[Observation] = []
        messages: list[ToolMessage] = []
        for proposed, verdict in zip(actions, verdicts, strict=False):
            outcome = outcomes.get(proposed["call_id"])
            if outcome is None:
                assert verdict is not None
                messages.append(blocked_message(proposed, verdict))
                continue
            observations.append(outcome.observation)
            messages.append(outcome.message)
            tool = proposed["tool"] or ""
            signature = call_signature(tool, proposed["args"], traits)
            call_counts[signature] = call_counts.get(signature, 0) + 1
            tool_counts[tool] = tool_counts.get(tool, 0) + 1
        now = time.time()
        update: dict[str, Any] = {
            "observations": observations,
            "messages": messages,
            "call_counts": call_counts,
            "tool_counts": tool_counts,
            "call_times": [*(state.get("call_times") or []), *[now] * len(allowed)][
                -MAX_CALL_TIMES:
            ],
            "counters": bump(state, tool_calls=len(allowed)),
        }
        taint = next((o.taint for o in outcomes.values() if o.taint is not None), None)
        if taint is not None and not state.get("tainted_by"):
            update["tainted_by"] = taint
        return update

    return act


@dataclass(frozen=True)
class _Outcome:
    """One call's observation, the tool message that answers it, and its taint (if any)."""

    observation: Observation
    message: ToolMessage
    taint: str | None
