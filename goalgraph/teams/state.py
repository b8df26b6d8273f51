"""The state of a team run: the team's own checkpointed values, beside each member's subgraph state.

A member's seven-node state lives in its subgraph's checkpoint namespace; the team's state keeps
what the team decides with: the work handed out, each member run's outcome and the shared budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict

from goalgraph.state import Counters, RunStatus, StepStatus

__all__ = [
    "MemberRun",
    "TeamBudget",
    "TeamInput",
    "TeamOutput",
    "TeamState",
    "TeamStep",
    "add_budget",
    "add_runs",
    "added_counts",
    "no_budget",
]


class TeamBudget(TypedDict):
    """What the whole team has used so far; the team's limits bound these together."""

    steps: int
    """Model decisions: every member's think iterations plus the team's own planning and judging."""
    tool_calls: int
    """Tool calls executed by any member."""
    blocked: int
    """Actions blocked by policy or denied by a human, in any member."""
    replans: int
    """The orchestrator's plan revisions (a member's own replans stay within its run)."""
    elapsed_s: float
    """Seconds of active work, summed over the members and the team's own nodes."""
    failures: NotRequired[dict[str, int]]
    """How often each failure (``goalgraph.progress.failure_key``: tool, arguments, error) has
    been seen in any member's run: a member run starts with these counts, so the no-progress
    check (``limits.max_repeated_failures``) spans the team, and work handed from member to
    member cannot repeat the same failing call without end."""


def no_budget() -> TeamBudget:
    """Return a budget with nothing used."""
    return TeamBudget(steps=0, tool_calls=0, blocked=0, replans=0, elapsed_s=0.0)


def add_budget(current: TeamBudget | None, used: TeamBudget | None) -> TeamBudget:
    """Add what a node ``used`` to the team's budget (parallel members each add theirs)."""
    total: dict[str, Any] = dict(current or no_budget())
    for key, value in dict(used or {}).items():
        if isinstance(value, dict):
            total[key] = added_counts(total.get(key) or {}, value)
        else:
            total[key] = round(total.get(key, 0) + value, 4)
    return TeamBudget(**total)  # type: ignore[typeddict-item]


def added_counts(current: Mapping[str, int], more: Mapping[str, int]) -> dict[str, int]:
    """Return the counts of ``current`` and ``more`` added key by key."""
    total = dict(current)
    for key, count in more.items():
        total[key] = total.get(key, 0) + count
    return total


class MemberRun(TypedDict):
    """One run of a member agent's subgraph, as the team saw it end."""

    agent: str
    """The member's name."""
    task: str
    """What it was asked to do (the team's wording, before its instructions are added)."""
    status: RunStatus
    """How its run ended; ``stopped_limit`` also when the team's budget was spent before it."""
    reason: str
    """Why, in words (the member's ``status_reason``)."""
    answer: str | None
    """Its answer when ``status == "done"``."""
    counters: Counters
    """What its run used."""
    step: NotRequired[int]
    """The orchestrator's plan step it worked on."""
    round: NotRequired[int]
    """The debate round it answered in."""


def add_runs(current: list[MemberRun] | None, new: list[MemberRun] | None) -> list[MemberRun]:
    """Append member runs (parallel members each append theirs)."""
    return [*(current or []), *(new or [])]


class TeamStep(TypedDict):
    """One step of the orchestrator's plan, assigned to a specialist."""

    id: int
    """Stable step number within the run (replanned steps get new numbers)."""
    description: str
    """The task handed to the specialist."""
    agent: str
    """The specialist that does it."""
    status: StepStatus
    """``pending`` until its specialist's run ends: ``done``, ``failed``, or ``skipped`` by a
    replan."""
    result: str | None
    """The specialist's answer, or why it failed."""


class TeamInput(TypedDict):
    """What a caller supplies to start a team run."""

    goal: str
    """The team's goal in natural language."""


class TeamOutput(TypedDict):
    """What a finished (or paused) team run reports back."""

    goal: str
    """The goal the team pursued."""
    status: RunStatus
    """How the run ended."""
    status_reason: str
    """A human-readable explanation of the status."""
    answer: str | None
    """The team's answer when ``status == "done"``."""
    runs: list[MemberRun]
    """Every member run, in the order they ended."""


class TeamState(TypedDict):
    """The full checkpointed state of a team run."""

    goal: str
    """The team's goal."""
    status: NotRequired[RunStatus]
    """``running`` until the team's run ends."""
    status_reason: NotRequired[str]
    """A human-readable explanation of the status."""
    answer: NotRequired[str | None]
    """The team's answer."""
    runs: NotRequired[Annotated[list[MemberRun], add_runs]]
    """Every member run, in the order they ended."""
    budget: NotRequired[Annotated[TeamBudget, add_budget]]
    """What the team has used of its shared limits."""
    plan: NotRequired[list[TeamStep]]
    """The orchestrator's steps (orchestrator pattern)."""
    current_step: NotRequired[int | None]
    """The step being worked on; ``None`` when none is left (orchestrator pattern)."""
    round: NotRequired[int]
    """The debate round under way, from 1 (debate pattern)."""
    winner: NotRequired[str | None]
    """The debater whose answer the judge picked (debate pattern)."""
