"""join: merge the branches that ran side by side back into the run, then choose the route.

The counters, call and tool counts (loop detection, budgets), failure counts (no progress), call
times (rate limit) and taint add up over the branches; the time clock advances by the longest
branch, since they ran at once. Then, in order: a branch that ended the run (a limit, no
progress) ends it; a final answer ends it as ``done``; a failed step (its attempts spent) sends
the run to ``replan`` (a second failed step is marked failed beside it); otherwise the run goes
on with the steps that are ready now, or answers when every step is done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Overwrite

from goalgraph.inflight import inflight_of
from goalgraph.nodes.act import MAX_CALL_TIMES
from goalgraph.nodes.branch import fork_id
from goalgraph.nodes.common import new_counters
from goalgraph.plan import next_step_id
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState, BranchResult, Counters, PlanStep

__all__ = ["make_join_node", "merged_counters"]


def merged_counters(start: Counters, results: Sequence[BranchResult]) -> Counters:
    """Return ``start`` plus what the branches used; seconds advance by the longest branch."""
    counters = Counters(**start)
    for result in results:
        for name in ("steps", "tool_calls", "blocked"):
            counters[name] += result["used"][name]
    longest = max((result["used"]["elapsed_s"] for result in results), default=0.0)
    counters["elapsed_s"] = round(counters["elapsed_s"] + longest, 4)
    return counters


def _summed(start: dict[str, int] | None, added: Sequence[dict[str, int]]) -> dict[str, int]:
    total = Counter(start or {})
    for counts in added:
        total.update(counts)
    return dict(total)


def make_join_node(res: AgentResources) -> Any:
    """Build the join node over ``res``."""

    async def join(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Merge the branch results into the plan and the run's ledgers, and set ``route``."""
        results = list(state.get("branch_results") or [])
        for key in {result["key"] for result in results}:
            inflight_of(res).drop(fork_id(config, key))
        finished = {result["step"]["id"]: result["step"] for result in results}
        plan = [PlanStep(**finished.get(step["id"], step)) for step in state.get("plan") or []]
        times = [*(state.get("call_times") or [])]
        for result in results:
            times.extend(result["call_times"])
        any_done = any(result["step"]["status"] == "done" for result in results)
        stalled = (state.get("stalled_attempts") or 0) + sum(r["stalled"] for r in results)
        update: dict[str, Any] = {
            "branch_results": Overwrite([]),
            "plan": plan,
            "counters": merged_counters(state.get("counters") or new_counters(), results),
            "call_counts": _summed(state.get("call_counts"), [r["call_counts"] for r in results]),
            "tool_counts": _summed(state.get("tool_counts"), [r["tool_counts"] for r in results]),
            "failure_counts": _summed(
                state.get("failure_counts"), [r["failure_counts"] for r in results]
            ),
            "call_times": sorted(times)[-MAX_CALL_TIMES:],
            "stalled_attempts": 0 if any_done else stalled,
            "observations": [o for result in results for o in result["observations"]],
            "messages": [m for result in results for m in result["messages"]],
            "proposed_action": None,
            "verdict": None,
            "parallel_actions": [],
            "parallel_verdicts": [],
            "feedback": "",
            "route": "next",
        }
        taint = state.get("tainted_by") or next(
            (r["tainted_by"] for r in results if r["tainted_by"]), None
        )
        if taint:
            update["tainted_by"] = taint
        ending = [r for r in results if r["status"] in ("failed", "stopped_limit")]
        if ending:
            first = ending[0]
            return {
                **update,
                "status": first["status"],
                "status_reason": first["status_reason"],
                "feedback": first["feedback"],
                "route": "end",
            }
        answered = [
            r
            for r in results
            if r["status"] == "done"
            and r["proposed_action"] is not None
            and r["proposed_action"]["kind"] == "final_answer"
        ]
        if answered:
            first = answered[0]
            return {
                **update,
                "status": "done",
                "status_reason": first["status_reason"],
                "answer": first["answer"],
                "route": "end",
            }
        failed = [r for r in results if r["route"] == "replan"]
        if failed:
            first = failed[0]
            for step in plan:
                if any(step["id"] == other["step"]["id"] for other in failed[1:]):
                    step["status"] = "failed"
            return {
                **update,
                "current_step": first["step"]["id"],
                "feedback": first["feedback"],
                "proposed_action": first["proposed_action"],
                "verdict": first["verdict"],
                "route": "replan",
            }
        following = next_step_id(plan)
        update["current_step"] = following
        if following is None and res.answers_from_last_step():
            last = next((step for step in reversed(plan) if step["status"] == "done"), None)
            return {
                **update,
                "route": "end",
                "status": "done",
                "answer": last["result"] if last else None,
                "status_reason": "goal reached (the answer is the last step's result)",
            }
        return update

    return join
