"""act: run the allowed tool call and record its outcome as an observation."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig

from goalgraph.nodes.common import OBSERVATION_CHARS, bump
from goalgraph.resources import AgentResources
from goalgraph.safety import call_signature
from goalgraph.state import AgentState, Observation

__all__ = ["make_act_node"]


def make_act_node(res: AgentResources) -> Any:
    """Build the act node over ``res``."""

    async def act(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Call the tool; a failure, timeout or dead server becomes an ``ok=False`` observation."""
        action = state["proposed_action"]
        assert action is not None and action["tool"] is not None
        toolset = await res.toolset()
        result = await toolset.call(action["tool"], action["args"])
        text = (result.content if result.ok else result.error or "tool failed")[:OBSERVATION_CHARS]
        observation = Observation(
            step_id=state.get("current_step"),
            call_id=action["call_id"],
            tool=action["tool"],
            args=action["args"],
            ok=result.ok,
            content=text,
            elapsed_s=round(result.elapsed_s, 4),
        )
        signature = call_signature(action["tool"], action["args"])
        counts = dict(state.get("call_counts") or {})
        counts[signature] = counts.get(signature, 0) + 1
        return {
            "observations": [observation],
            "messages": [
                ToolMessage(
                    content=text if result.ok else f"Error: {text}",
                    tool_call_id=action["call_id"],
                    name=action["tool"],
                    status="success" if result.ok else "error",
                )
            ],
            "call_counts": counts,
            "counters": bump(state, tool_calls=1),
        }

    return act
