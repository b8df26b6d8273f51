"""Limits shared by a whole team: what is left of them, and the limits each member run gets.

A team's ``limits.max_steps``, ``limits.max_seconds`` and ``safety.max_tool_calls`` bound all its
members together: a member runs under its own limits capped by what the team has left (split evenly
among members that run at the same time), and what it used is then subtracted. So a team of N agents
cannot spend N times a run's budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from goalgraph.spec import AgentSpec
from goalgraph.state import Counters
from goalgraph.teams.state import TeamBudget

__all__ = ["Allowance", "TeamLimits", "budget_of_run", "capped_spec"]


@dataclass(frozen=True)
class Allowance:
    """What one member run may use of the team's budget."""

    steps: int
    seconds: float
    tool_calls: int | None
    """``None`` when the team has no tool-call budget."""


@dataclass(frozen=True)
class TeamLimits:
    """The team-wide bounds, read from the team spec's ``limits`` and ``safety``."""

    max_steps: int
    max_seconds: float
    max_tool_calls: int | None
    max_replans: int

    @classmethod
    def of(cls, spec: AgentSpec) -> TeamLimits:
        """Return the bounds that ``spec`` sets for its whole team."""
        return cls(
            max_steps=spec.limits.max_steps,
            max_seconds=spec.limits.max_seconds,
            max_tool_calls=spec.safety.max_tool_calls,
            max_replans=spec.limits.max_replans,
        )

    def spent(self, used: TeamBudget) -> str | None:
        """Return why the team can do no more work, or ``None`` while every budget has some left."""
        if used["steps"] >= self.max_steps:
            return f"team budget spent: {used['steps']} of {self.max_steps} steps used"
        if used["elapsed_s"] >= self.max_seconds:
            return (
                f"team budget spent: {used['elapsed_s']:.1f} of {self.max_seconds:g} seconds used"
            )
        if self.max_tool_calls is not None and used["tool_calls"] >= self.max_tool_calls:
            return (
                f"team budget spent: {used['tool_calls']} of {self.max_tool_calls} tool calls used"
            )
        return None

    def allowance(self, used: TeamBudget, *, share: int = 1) -> Allowance | str:
        """Return what one of ``share`` members starting together may use, or why none may start.

        Each gets an equal part of what is left, rounded down, so that together they stay within
        the team's limits.
        """
        spent = self.spent(used)
        if spent:
            return spent
        steps = (self.max_steps - used["steps"]) // share
        if steps < 1:
            left = self.max_steps - used["steps"]
            return f"team budget spent: {left} step(s) left for {share} agents running together"
        tool_calls = None
        if self.max_tool_calls is not None:
            tool_calls = (self.max_tool_calls - used["tool_calls"]) // share
            if tool_calls < 1:
                left = self.max_tool_calls - used["tool_calls"]
                return (
                    f"team budget spent: {left} tool call(s) left for {share} agents running "
                    "together"
                )
        seconds = (self.max_seconds - used["elapsed_s"]) / share
        return Allowance(steps=steps, seconds=seconds, tool_calls=tool_calls)


def capped_spec(spec: AgentSpec, allowance: Allowance) -> AgentSpec:
    """Return ``spec`` with its limits capped by ``allowance`` (its own, if lower, stay)."""
    limits = spec.limits.model_copy(
        update={
            "max_steps": min(spec.limits.max_steps, allowance.steps),
            "max_seconds": min(spec.limits.max_seconds, allowance.seconds),
        }
    )
    own_calls = spec.safety.max_tool_calls
    calls = allowance.tool_calls
    if own_calls is not None:
        calls = own_calls if calls is None else min(own_calls, calls)
    safety = spec.safety.model_copy(update={"max_tool_calls": calls})
    return spec.model_copy(update={"limits": limits, "safety": safety})


def budget_of_run(counters: Counters | None) -> TeamBudget:
    """Return what a member run with these ``counters`` used of the team's budget."""
    counters = counters or Counters(steps=0, replans=0, tool_calls=0, blocked=0, elapsed_s=0.0)
    return TeamBudget(
        steps=counters["steps"],
        tool_calls=counters["tool_calls"],
        blocked=counters["blocked"],
        replans=0,
        elapsed_s=counters["elapsed_s"],
    )
