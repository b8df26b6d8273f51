"""What a task run did, recorded from the agent's progress events: plans, calls, verdicts, outcome.

Tool-call validity is defined here, once. A call the model proposed is **valid** when

1. the tool exists (safety_check did not block it as ``unknown_tool``),
2. its arguments validate against the tool's JSON schema (not blocked as ``invalid_arguments``),
3. and, when it ran, the tool's server did not reject its arguments (FastMCP's
   ``validation error for <tool>Arguments``).

A call blocked for another reason (a path outside the workspace, the loop rule, a human denial)
is still a valid call: it was well formed, and the policy judged what it would do. A call that ran
and failed for a reason other than its argument format (a missing file, a division by zero) is
valid too. A think turn whose output held no usable action (cut off at the token limit, or no
tool call at all) counts as one invalid call, so

    validity = valid calls / (proposed tool calls + unusable think turns)

and a run without any call has no validity (``None``), not 100 %.

In a team run every call, plan and decision carries the ``agent`` that made it, a verdict or an
observation is matched to the latest call of the same agent (debaters run side by side), and the
record keeps each member run (``members``) and the debate's ``winner``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from goalgraph.events import AgentEvent

__all__ = [
    "ARGUMENT_ERROR",
    "INVALID_CALL_RULES",
    "REFUSAL_RULES",
    "CallRecord",
    "TaskRun",
    "record_event",
]

ARGUMENT_ERROR = re.compile(r"validation error for \w+Arguments")
"""How an MCP server built with FastMCP reports arguments it rejected before running the tool."""
INVALID_CALL_RULES = frozenset({"unknown_tool", "invalid_arguments"})
"""Safety rules whose block means the call itself was malformed."""
REFUSAL_RULES = frozenset(
    {"denied", "not_allowed", "path_escape", "host_not_allowed", "budget", "tainted"}
)
"""Safety rules whose block refuses a well-formed call for what it would do."""
_OUTPUT_CHARS = 300


@dataclass
class CallRecord:
    """One tool call the model proposed, with its verdict and, when it ran, its outcome."""

    tool: str
    """The tool the model named."""
    args: dict[str, Any]
    """The arguments it gave."""
    decision: str | None = None
    """``allow`` or ``block``; ``None`` when the run ended before a verdict."""
    rule: str | None = None
    """The safety rule that decided (``goalgraph.safety.Rule``)."""
    by: str | None = None
    """``policy`` or ``human``."""
    reason: str = ""
    """The verdict's reason."""
    approval_requested: bool = False
    """Whether the call paused the run for a human."""
    ran: bool = False
    """Whether the tool was executed."""
    ok: bool | None = None
    """Whether it succeeded (``None`` when it did not run)."""
    output: str = ""
    """The start of its output or error."""
    agent: str = ""
    """In a team run, the agent that proposed it (``""`` for a single agent)."""
    left_out: dict[str, Any] = field(default_factory=dict)
    """Optional arguments the model gave that ``drop_invented_optional`` left out."""

    @property
    def valid(self) -> bool:
        """Whether the call was well formed (see the module docstring)."""
        if self.rule in INVALID_CALL_RULES:
            return False
        return not (self.ran and not self.ok and ARGUMENT_ERROR.search(self.output))

    @property
    def refused(self) -> bool:
        """Whether the safety layer or a human refused this well-formed call."""
        if self.decision != "block":
            return False
        return self.rule in REFUSAL_RULES or self.by == "human"

    @property
    def succeeded(self) -> bool:
        """Whether the tool ran without error."""
        return self.ran and bool(self.ok)


@dataclass
class TaskRun:
    """The record of one task run: trajectory, counters, outcome and the check's verdict."""

    task_id: str
    """The task's id."""
    kind: str
    """The task's kind."""
    model: str
    """Which model ran it (``scripted``, ``bundled`` or a model name)."""
    goal: str = ""
    """The goal."""
    split: str = "tuning"
    """The task's split (``tuning`` or ``heldout``)."""
    earlier_runs: list[dict[str, Any]] = field(default_factory=list)
    """The runs of the task's ``before`` goals: goal, status, answer and the tools they called.
    Everything else in the record (calls, counters, the check) is about the task's own goal."""
    status: str = "failed"
    """The run's final status (``done``, ``failed``, ``stopped_limit``, ``awaiting_approval``)."""
    message: str = ""
    """Why it ended, in words."""
    answer: str | None = None
    """The run's answer."""
    plans: list[list[dict[str, Any]]] = field(default_factory=list)
    """The first plan, then the whole plan after each replan (description, tool, status)."""
    calls: list[CallRecord] = field(default_factory=list)
    """Every tool call the model proposed, in order."""
    unusable_turns: list[str] = field(default_factory=list)
    """Think turns that produced no usable action, with the agent's note on each."""
    decisions: list[dict[str, str]] = field(default_factory=list)
    """``step_done`` and ``final_answer`` decisions with their text."""
    approvals: int = 0
    """How often the run paused for approval."""
    think_steps: int = 0
    """Think iterations (model decisions) the run used."""
    replans: int = 0
    """Plan revisions."""
    wall_s: float = 0.0
    """Seconds from the start of the run to its end, tool server start included."""
    error: str | None = None
    """An exception that stopped the runner itself (a crash), if any."""
    success: bool = False
    """Whether the task's check held."""
    check_failures: list[str] = field(default_factory=list)
    """Each part of the check that did not hold, in words."""
    failure_cause: str | None = None
    """The failure category (``goalgraph.eval.checks.FAILURE_CAUSES``) when it failed."""
    members: list[dict[str, Any]] = field(default_factory=list)
    """A team run's member runs, in the order they ended: agent, task, status, reason, answer,
    think steps and tool calls."""
    team_plan: list[dict[str, Any]] = field(default_factory=list)
    """The orchestrator's last plan: each step's description, agent and status."""
    winner: str | None = None
    """The debater whose answer the judge picked."""

    @property
    def calls_total(self) -> int:
        """Proposed tool calls plus unusable think turns."""
        return len(self.calls) + len(self.unusable_turns)

    @property
    def calls_valid(self) -> int:
        """Valid proposed tool calls."""
        return sum(call.valid for call in self.calls)

    @property
    def validity(self) -> float | None:
        """``calls_valid / calls_total``, or ``None`` without any call."""
        total = self.calls_total
        return self.calls_valid / total if total else None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-serialisable data, with the derived counts."""
        data = asdict(self)
        for call, raw in zip(self.calls, data["calls"], strict=True):
            raw["valid"] = call.valid
        data.update(
            calls_total=self.calls_total, calls_valid=self.calls_valid, validity=self.validity
        )
        return data


def record_event(run: TaskRun, event: AgentEvent) -> None:
    """Add one progress event of the run to ``run``."""
    data = event.data
    agent = {"agent": event.agent} if event.agent else {}
    if event.kind in ("plan", "replan"):
        if "plan" not in data:  # A team's own plan (text); its steps come with the result.
            return
        run.plans.append(
            [
                {
                    "description": s["description"],
                    "tool": s["tool"],
                    "status": s["status"],
                    **agent,
                }
                for s in data["plan"]
            ]
        )
    elif event.kind == "tool_call":
        run.calls.append(
            CallRecord(
                tool=str(data["tool"]),
                args=dict(data["args"] or {}),
                agent=event.agent,
                left_out=dict(data.get("left_out") or {}),
            )
        )
    elif event.kind == "verdict" and (call := _latest_call(run, event.agent)):
        call.decision, call.rule = data["decision"], data.get("rule")
        call.by, call.reason = data.get("by"), str(data.get("reason", ""))
    elif event.kind == "observation" and (call := _latest_call(run, event.agent)):
        call.ran, call.ok = True, bool(data["ok"])
        call.output = str(data["content"])[:_OUTPUT_CHARS]
    elif event.kind == "approval":
        run.approvals += 1
        if call := _latest_call(run, event.agent):
            call.approval_requested = True
    elif event.kind == "note":
        run.unusable_turns.append(str(data["text"])[:_OUTPUT_CHARS])
    elif event.kind == "decision":
        run.decisions.append({"action": str(data["action"]), "text": str(data["text"]), **agent})
    elif event.kind == "end" and event.result is not None:
        _record_end(run, event.result)


def _latest_call(run: TaskRun, agent: str) -> CallRecord | None:
    """Return the latest call that ``agent`` proposed (``""``: a single agent's)."""
    return next((call for call in reversed(run.calls) if call.agent == agent), None)


def _record_end(run: TaskRun, result: Any) -> None:
    run.status, run.message, run.answer = result.status, result.message, result.answer
    counters = result.counters or {}
    run.think_steps = int(counters.get("steps", 0))
    run.replans = int(counters.get("replans", 0))
    members = getattr(result, "runs", None)
    if members is None:  # A single agent's result.
        return
    run.members = [
        {
            "agent": member["agent"],
            "task": member["task"],
            "status": member["status"],
            "reason": member["reason"],
            "answer": member["answer"],
            "think_steps": int((member.get("counters") or {}).get("steps", 0)),
            "tool_calls": int((member.get("counters") or {}).get("tool_calls", 0)),
        }
        for member in members
    ]
    run.team_plan = [
        {"description": step["description"], "agent": step.get("agent"), "status": step["status"]}
        for step in result.plan or []
    ]
    run.winner = getattr(result, "winner", None)
