"""safety_check: apply the deterministic policy; pause for a human when a tool needs approval."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from goalgraph.hints import tool_hints
from goalgraph.nodes.common import bump, current_step, thread_id_of
from goalgraph.resources import AgentResources
from goalgraph.risk import ToolTraits
from goalgraph.safety import (
    PolicyVerdict,
    RunLedger,
    call_signature,
    check_action,
    done_changes,
    human_decision,
    unchanged_reads,
)
from goalgraph.state import AgentState, ProposedAction, Verdict, turn_actions

__all__ = ["blocked_message", "ledger_of", "make_safety_check_node"]


def ledger_of(
    state: AgentState,
    traits: Mapping[str, ToolTraits] | None = None,
    *,
    reads: bool = True,
    examples: bool = False,
) -> RunLedger:
    """Return what the policy needs to know about the run so far (with ``reads`` and
    ``traits``, the calls of the current step's planned tool whose result nothing has changed
    since: ``goalgraph.safety.unchanged_reads``; with ``examples``, the text a copied example
    is looked for in: the goal and every tool result)."""
    seen = None
    if examples:
        outputs = [str(o["content"]) for o in state.get("observations") or []]
        seen = "\n".join([str(state.get("goal") or ""), *outputs])
    step = current_step(state.get("plan") or [], state.get("current_step"))
    planned = step["tool"] if step is not None else None
    earlier: dict[str, str] = {}
    if reads and traits and planned:
        earlier = unchanged_reads(state.get("observations") or [], traits, tool=planned)
    return RunLedger(
        call_counts=state.get("call_counts") or {},
        tool_counts=state.get("tool_counts") or {},
        call_times=state.get("call_times") or [],
        tainted_by=state.get("tainted_by"),
        unchanged_reads=earlier,
        seen_text=seen,
        done_changes=done_changes(state.get("observations") or [], traits or {}),
    )


def make_safety_check_node(res: AgentResources) -> Any:
    """Build the safety_check node over ``res``."""

    async def safety_check(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Return an allow or block verdict for each proposed tool call.

        Calls proposed together (``parallel_actions``) are checked one by one, in order, each
        as if the allowed ones before it had run: two identical calls in one turn count twice
        for loop detection and the budgets. A tool that needs approval calls ``interrupt()``:
        the run pauses (checkpointed) with the call's details, and continues when resumed with
        the human's decision (several approvals in one turn are asked one after another). Since
        LangGraph re-runs the node on resume, everything before the last ``interrupt()`` is
        pure; the audit records are written once, after every decision.
        """
        action = state["proposed_action"]
        assert action is not None and action["kind"] == "tool"
        actions = turn_actions(state)
        toolset = await res.toolset()
        traits = await res.tool_traits()
        profile = await res.aprofile()
        ledger = ledger_of(
            state,
            traits,
            reads=profile.repeat_recovery,
            examples=profile.refuse_copied_examples,
        )
        hints = tool_hints(toolset.tools)
        verdicts: list[Verdict] = []
        wait_s = 0.0
        for proposed in actions:
            policy = check_action(
                proposed,
                policy=res.spec.safety,
                schemas=toolset.schemas(),
                ledger=ledger,
                max_identical_calls=res.spec.limits.max_identical_calls,
                traits=traits,
                allow_hosts=res.spec.tools.http.allow_hosts,
                goal=state.get("goal"),
                hints=hints,
            )
            verdict = _decide(policy, proposed, state)
            verdicts.append(verdict)
            if verdict["decision"] == "allow":
                wait_s = max(wait_s, policy.wait_s)
                ledger = _with_call(ledger, proposed, traits)
        if res.audit is not None:
            for proposed, verdict in zip(actions, verdicts, strict=True):
                await res.audit.awrite(
                    thread_id_of(config),
                    "verdict",
                    call_id=proposed["call_id"],
                    step=state.get("current_step"),
                    tool=proposed["tool"],
                    args=proposed["args"],
                    thought=proposed["thought"],
                    risk=verdict.get("risk"),
                    decision=verdict["decision"],
                    rule=verdict.get("rule"),
                    reason=verdict["reason"],
                    by=verdict["by"],
                )
        update: dict[str, Any] = {"verdict": verdicts[0], "parallel_verdicts": verdicts[1:]}
        blocked = [
            (proposed, verdict)
            for proposed, verdict in zip(actions, verdicts, strict=True)
            if verdict["decision"] == "block"
        ]
        if blocked:
            update["counters"] = bump(state, blocked=len(blocked))
            update["feedback"] = "; ".join(
                f"{proposed['tool']} was blocked: {verdict['reason']}"
                for proposed, verdict in blocked
            )
        if len(blocked) == len(actions):
            # Nothing runs, so act will not answer the calls: answer each with its block here.
            update["messages"] = [blocked_message(p, v) for p, v in blocked]
        elif wait_s > 0:
            await asyncio.sleep(wait_s)  # the rate limit throttles, it does not refuse
        return update

    return safety_check


def blocked_message(action: ProposedAction, verdict: Verdict) -> ToolMessage:
    """Return the tool message that answers a blocked call with the reason."""
    return ToolMessage(
        content=f"Blocked: {verdict['reason']}",
        tool_call_id=action["call_id"],
        name=action["tool"],
        status="error",
    )


def _with_call(
    ledger: RunLedger, action: ProposedAction, traits: Mapping[str, ToolTraits]
) -> RunLedger:
    """Return ``ledger`` as it will be once ``action`` has run."""
    tool = action["tool"] or ""
    signature = call_signature(tool, action["args"], traits)
    return replace(
        ledger,
        call_counts={**ledger.call_counts, signature: ledger.call_counts.get(signature, 0) + 1},
        tool_counts={**ledger.tool_counts, tool: ledger.tool_counts.get(tool, 0) + 1},
        call_times=[*ledger.call_times, time.time()],
    )


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
