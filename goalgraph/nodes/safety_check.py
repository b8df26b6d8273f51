"""safety_check: apply the deterministic policy; pause for a human when a tool needs approval."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from goalgraph.nodes.common import bump
from goalgraph.resources import AgentResources
from goalgraph.safety import check_action, human_decision
from goalgraph.state import AgentState, Verdict

__all__ = ["make_safety_check_node"]


def make_safety_check_node(res: AgentResources) -> Any:
    """Build the safety_check node over ``res``."""

    async def safety_check(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Return an allow or block verdict for the proposed tool call.

        A tool that needs approval calls ``interrupt()``: the run pauses (checkpointed) with the
        call's details, and continues when resumed with the human's decision. Since LangGraph
        re-runs the node on resume, everything before ``interrupt()`` is pure.
        """
        action = state["proposed_action"]
        assert action is not None and action["kind"] == "tool"
        toolset = await res.toolset()
        policy = check_action(
            action,
            policy=res.spec.safety,
            schemas=toolset.schemas(),
            call_counts=state.get("call_counts") or {},
            max_identical_calls=res.spec.limits.max_identical_calls,
        )
        if policy.decision == "ask":
            answer = interrupt(
                {
                    "type": "approval",
                    "tool": action["tool"],
                    "args": action["args"],
                    "thought": action["thought"],
                    "step": state.get("current_step"),
                    "reason": policy.reason,
                }
            )
            approved, why = human_decision(answer)
            verdict = Verdict(
                decision="allow" if approved else "block",
                reason=("approved by a human" if approved else "denied by a human")
                + (f": {why}" if why else ""),
                by="human",
            )
        else:
            verdict = Verdict(
                decision="allow" if policy.decision == "allow" else "block",
                reason=policy.reason,
                by="policy",
            )
        if verdict["decision"] == "allow":
            return {"verdict": verdict}
        return {
            "verdict": verdict,
            "counters": bump(state, blocked=1),
            "feedback": f"{action['tool']} was blocked: {verdict['reason']}",
            "messages": [
                ToolMessage(
                    content=f"Blocked: {verdict['reason']}",
                    tool_call_id=action["call_id"],
                    name=action["tool"],
                    status="error",
                )
            ],
        }

    return safety_check
