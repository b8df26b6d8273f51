"""safety_check: apply the deterministic policy; pause for a human when a tool needs approval."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from goalgraph.nodes.common import bump, thread_id_of
from goalgraph.resources import AgentResources
from goalgraph.safety import PolicyVerdict, RunLedger, check_action, human_decision
from goalgraph.state import AgentState, ProposedAction, Verdict

__all__ = ["ledger_of", "make_safety_check_node"]


def ledger_of(state: AgentState) -> RunLedger:
    """Return what the policy needs to know about the run so far."""
    return RunLedger(
        call_counts=state.get("call_counts") or {},
        tool_counts=state.get("tool_counts") or {},
        call_times=state.get("call_times") or [],
        tainted_by=state.get("tainted_by"),
    )


def make_safety_check_node(res: AgentResources) -> Any:
    """Build the safety_check node over ``res``."""

    async def safety_check(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Return an allow or block verdict for the proposed tool call.

        A tool that needs approval calls ``interrupt()``: the run pauses (checkpointed) with the
        call's details, and continues when resumed with the human's decision. Since LangGraph
        re-runs the node on resume, everything before ``interrupt()`` is pure; the audit record
        is written once, after the decision.
        """
        action = state["proposed_action"]
        assert action is not None and action["kind"] == "tool"
        toolset = await res.toolset()
        policy = check_action(
            action,
            policy=res.spec.safety,
            schemas=toolset.schemas(),
            ledger=ledger_of(state),
            max_identical_calls=res.spec.limits.max_identical_calls,
            traits=await res.tool_traits(),
            allow_hosts=res.spec.tools.http.allow_hosts,
        )
        verdict = _decide(policy, action, state)
        if res.audit is not None:
            await res.audit.awrite(
                thread_id_of(config),
                "verdict",
                call_id=action["call_id"],
                step=state.get("current_step"),
                tool=action["tool"],
                args=action["args"],
                thought=action["thought"],
                risk=policy.risk,
                decision=verdict["decision"],
                rule=verdict.get("rule"),
                reason=verdict["reason"],
                by=verdict["by"],
            )
        if verdict["decision"] == "allow":
            if policy.wait_s > 0:
                await asyncio.sleep(policy.wait_s)  # the rate limit throttles, it does not refuse
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


def _decide(policy: PolicyVerdict, action: ProposedAction, state: AgentState) -> Verdict:
    """Turn the policy's answer into a verdict, asking a human (``interrupt``) for ``ask``."""
    if policy.decision != "ask":
        return Verdict(
            decision=policy.decision,
            reason=policy.reason,
            by="policy",
            rule=policy.rule,
            risk=policy.risk,
        )
    answer = interrupt(
        {
            "type": "approval",
            "tool": action["tool"],
            "args": action["args"],
            "thought": action["thought"],
            "step": state.get("current_step"),
            "risk": policy.risk,
            "reason": policy.reason,
        }
    )
    approved, why = human_decision(answer)
    return Verdict(
        decision="allow" if approved else "block",
        reason=("approved by a human" if approved else "denied by a human")
        + (f": {why}" if why else ""),
        by="human",
        rule=policy.rule,
        risk=policy.risk,
    )
