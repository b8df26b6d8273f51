"""The typed state that flows through the seven-node graph.

``InputState`` is what a caller (Python API, CLI, Studio, LangServe) provides; ``AgentState`` is the
whole checkpointed state. Everything is a ``TypedDict`` so that LangServe and Studio can derive
schemas, and everything is JSON-serialisable so checkpoints stay small and portable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

__all__ = [
    "MAX_OBSERVATIONS",
    "ActionKind",
    "AgentState",
    "BranchResult",
    "Counters",
    "Fork",
    "InputState",
    "Observation",
    "OutputState",
    "PlanStep",
    "ProposedAction",
    "RunStatus",
    "StepStatus",
    "Verdict",
    "add_results",
    "keep_recent",
    "turn_actions",
    "turn_verdicts",
]

RunStatus = Literal["running", "done", "failed", "stopped_limit", "awaiting_approval"]
StepStatus = Literal["pending", "done", "failed", "skipped"]
ActionKind = Literal["tool", "step_done", "final_answer"]

MAX_OBSERVATIONS = 20
"""Observations kept in state; older ones stay in the checkpoint history."""


class PlanStep(TypedDict):
    """One step of the plan."""

    id: int
    """Stable step number, unique within a run (replanned steps get new numbers)."""
    description: str
    """What the step must achieve, in one sentence."""
    tool: str | None
    """The tool the planner expects to use, or ``None``."""
    depends_on: list[int]
    """Ids of steps that must be done before this one starts."""
    success_criteria: str
    """How to tell that the step is done."""
    status: StepStatus
    """``pending`` until reflect marks it ``done`` or ``failed`` (or replan ``skipped``)."""
    attempts: int
    """Failed or blocked actions spent on this step so far."""
    result: str | None
    """What the step produced (a tool observation or the model's summary)."""


class ProposedAction(TypedDict):
    """The one decision think produced in an iteration."""

    kind: ActionKind
    """A tool call, the end of the current step, or the final answer."""
    thought: str
    """The model's short reason for the action."""
    tool: str | None
    """Tool name for ``kind == "tool"``."""
    args: dict[str, Any]
    """Tool arguments for ``kind == "tool"``."""
    call_id: str
    """Id linking the tool call to its observation message."""
    text: str
    """The step result (``step_done``) or the answer (``final_answer``)."""


class Verdict(TypedDict):
    """safety_check's decision on a proposed tool call."""

    decision: Literal["allow", "block"]
    """``allow`` runs the call; ``block`` sends the reason back to the agent."""
    reason: str
    """Why; shown to the model on a block and written to the run's record."""
    by: Literal["policy", "human"]
    """Whether the deterministic policy or a human approver decided."""
    rule: NotRequired[str]
    """The policy check that decided (``goalgraph.safety.Rule``), or ``human``."""
    risk: NotRequired[str | None]
    """The tool's risk class: ``read``, ``write``, ``exec`` or ``network``."""


class Observation(TypedDict):
    """The outcome of one executed tool call."""

    step_id: int | None
    """The plan step the call served."""
    call_id: str
    """Matches ``ProposedAction.call_id``."""
    tool: str
    """Tool name."""
    args: dict[str, Any]
    """Arguments it ran with."""
    ok: bool
    """False when the tool failed, timed out or its server was unreachable."""
    content: str
    """Normalised text result (capped) or the error message."""
    elapsed_s: float
    """Seconds the call took."""
    flags: NotRequired[list[str]]
    """Prompt-injection patterns found in the output (``goalgraph.injection``); empty if none."""


class Counters(TypedDict):
    """Run-wide counters that the limits are checked against."""

    steps: int
    """Think iterations so far."""
    replans: int
    """Plan revisions so far."""
    tool_calls: int
    """Tool calls executed so far."""
    blocked: int
    """Actions blocked by policy or denied by a human."""
    elapsed_s: float
    """Seconds of active work (node time; time waiting for approval is excluded)."""


def keep_recent(current: list[Observation], new: list[Observation]) -> list[Observation]:
    """Append ``new`` observations, keeping only the most recent ``MAX_OBSERVATIONS``."""
    return (current + new)[-MAX_OBSERVATIONS:]


class Fork(TypedDict):
    """What a branch (one plan step worked on beside others) started from."""

    key: str
    """Names the fan-out, unique within the run: its branches share one in-flight ledger."""
    step_id: int
    """The step this branch works on."""
    counters: Counters
    """The run's counters when the branches started."""
    call_counts: dict[str, int]
    """The run's ``call_counts`` then."""
    tool_counts: dict[str, int]
    """The run's ``tool_counts`` then."""
    failure_counts: dict[str, int]
    """The run's ``failure_counts`` then."""
    call_ids: list[str]
    """Ids of the observations the branch started with (its own are the others)."""


class BranchResult(TypedDict):
    """How one branch ended, and what it used, for the join to merge into the run."""

    key: str
    """The fan-out it belonged to."""
    step: PlanStep
    """Its step, with the status, result and attempts the branch left it with."""
    route: str
    """Its reflect's last decision: ``next`` (step done), ``replan`` or ``end``."""
    status: RunStatus
    """``running`` unless the branch ended the run (final answer, limit, no progress)."""
    status_reason: str
    """Why, when it ended the run."""
    answer: str | None
    """A final answer the branch gave."""
    feedback: str
    """Its latest failure or block reason."""
    used: Counters
    """What it added to the run's counters (``elapsed_s``: its own work time)."""
    call_counts: dict[str, int]
    """Runs of each exact call it made."""
    tool_counts: dict[str, int]
    """Runs of each tool it made."""
    failure_counts: dict[str, int]
    """Failures it saw."""
    call_times: list[float]
    """When its calls ran."""
    stalled: int
    """Its failed attempts since its step last made progress (0 once the step is done)."""
    tainted_by: str | None
    """Why its tool output tainted the run, if it did."""
    observations: list[Observation]
    """Its tool outcomes."""
    messages: list[AnyMessage]
    """Its tool calls and results, as chat messages."""
    proposed_action: ProposedAction | None
    """Its last action (replan reads the failed call from it)."""
    verdict: Verdict | None
    """The verdict on that action."""


def add_results(current: list[BranchResult], new: list[BranchResult]) -> list[BranchResult]:
    """Append the results of branches that ran side by side (each adds its own)."""
    return [*(current or []), *(new or [])]


class InputState(TypedDict):
    """What a caller supplies to start a run."""

    goal: str
    """The user's goal in natural language."""


class OutputState(TypedDict):
    """What a finished (or paused) run reports back."""

    goal: str
    """The goal the run pursued."""
    status: RunStatus
    """How the run ended."""
    status_reason: str
    """A human-readable explanation of the status."""
    answer: str | None
    """The final answer when ``status == "done"``."""
    plan: list[PlanStep]
    """The plan with every step's status and result."""


class AgentState(TypedDict):
    """The full checkpointed state of a run."""

    goal: str
    """The user's goal in natural language."""
    plan: NotRequired[list[PlanStep]]
    """Steps with ids, dependencies, success criteria and status."""
    current_step: NotRequired[int | None]
    """Id of the step being worked on; ``None`` once every step is done (time to answer)."""
    messages: NotRequired[Annotated[list[AnyMessage], add_messages]]
    """Recent tool calls and observations as chat messages (older ones fold into ``summary``)."""
    proposed_action: NotRequired[ProposedAction | None]
    """think's latest decision, checked by safety_check before act runs it."""
    verdict: NotRequired[Verdict | None]
    """safety_check's decision on ``proposed_action``."""
    parallel_actions: NotRequired[list[ProposedAction]]
    """Further tool calls the same think turn proposed beside ``proposed_action`` (with
    ``limits.max_parallel_calls`` above 1): each is checked on its own, and the allowed ones run
    together with it."""
    parallel_verdicts: NotRequired[list[Verdict]]
    """safety_check's decisions on ``parallel_actions``, in the same order."""
    observations: NotRequired[Annotated[list[Observation], keep_recent]]
    """The most recent tool outcomes (bounded)."""
    status: NotRequired[RunStatus]
    """``running`` until the run ends as done, failed or stopped by a limit."""
    status_reason: NotRequired[str]
    """A human-readable explanation of the status."""
    answer: NotRequired[str | None]
    """The final answer."""
    counters: NotRequired[Counters]
    """Run-wide counters for the limits."""
    call_counts: NotRequired[dict[str, int]]
    """How often each exact tool call (name plus canonical arguments) has run: loop detection."""
    tool_counts: NotRequired[dict[str, int]]
    """How often each tool has run: the per-run budgets."""
    call_times: NotRequired[list[float]]
    """Wall-clock times of the most recent tool calls: the rate limit."""
    tainted_by: NotRequired[str | None]
    """The first tool call whose output tainted the run (an untrusted source, or flagged as
    prompt injection), and why, if any (``goalgraph.safety.taint_of``)."""
    summary: NotRequired[str]
    """Running summary of messages folded out of ``messages``."""
    recalled: NotRequired[str]
    """What long-term memory held about the goal when the run was planned (profile, lessons of
    similar runs, facts and excerpts), as prompt text."""
    route: NotRequired[str]
    """reflect's routing decision: ``continue``, ``next``, ``replan`` or ``end``."""
    feedback: NotRequired[str]
    """The latest failure or block reason, for think and replan to read."""
    failure_counts: NotRequired[dict[str, int]]
    """How often each failure (``goalgraph.progress.failure_key``: tool, arguments, error) has
    been seen in the run: the no-progress check."""
    stalled_attempts: NotRequired[int]
    """Failed attempts since a plan step was last completed: the no-progress check."""
    fork: NotRequired[Fork | None]
    """Inside a branch: what it started from; ``None`` in the main line of the run."""
    branch_results: NotRequired[Annotated[list[BranchResult], add_results]]
    """Results of the branches that ran side by side, until the join merges them."""


def turn_actions(state: Mapping[str, Any]) -> list[ProposedAction]:
    """Return the last think turn's actions: ``proposed_action``, then the ``parallel_actions``
    proposed beside it; ``[]`` when there is none. ``state`` may be a node's update."""
    action = state.get("proposed_action")
    return [action, *(state.get("parallel_actions") or [])] if action else []


def turn_verdicts(state: Mapping[str, Any]) -> list[Verdict | None]:
    """Return safety_check's verdicts on ``turn_actions``, in the same order (``None`` before
    safety_check has ruled on the turn). ``state`` may be a node's update."""
    return [state.get("verdict"), *(state.get("parallel_verdicts") or [])]
