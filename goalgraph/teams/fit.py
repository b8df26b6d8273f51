"""Fit an orchestrator's steps to its members, by the hints their tools carry.

The team's model names a member for each step, and a small one names the wrong one: planning
"Read prices.txt and save the price of a pear in pear.txt", Qwen2.5-Coder-0.5B gave the one step
"Read prices.txt" to a writer that may only write, which then overwrote ``prices.txt``.
``fit_steps`` gives a step whose words cue a tool (``goalgraph.cues.cued_tool``) that its member
is not offered to the first member that is, and, like the agent's own ``cued_steps`` rule, adds
a step for a tool the goal strongly cues but no step does. It reads only the tools' hints, never
a tool's or a member's name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from goalgraph.cues import cued_tool
from goalgraph.hints import ToolHints
from goalgraph.plan import MAX_PLAN_STEPS, PlanStep, add_cued_steps
from goalgraph.teams.state import TeamStep

__all__ = ["fit_steps"]


def fit_steps(
    steps: Sequence[TeamStep],
    goal: str,
    tools_of: Mapping[str, Collection[str]],
    hints: Mapping[str, ToolHints],
    *,
    add_cued: bool,
    max_steps: int = MAX_PLAN_STEPS,
) -> list[TeamStep]:
    """Return ``steps`` with each given to a member offered the tool it cues.

    Args:
        steps: The orchestrator's steps, each with the member it names.
        goal: The team's goal.
        tools_of: The tools each member is offered, by member name, in the team's order.
        hints: The hints of the members' tools (``goalgraph.hints.tool_hints``).
        add_cued: Also add a step, for the first member offered it, for each tool the goal
            strongly cues and no step uses (the profile's ``cued_steps``).
        max_steps: The most steps the plan may have after adding.
    """
    cued = {step["id"]: cued_tool(step["description"], hints) for step in steps}
    fitted = [
        TeamStep(**{**step, "agent": _member_for(cued[step["id"]], step["agent"], tools_of)})
        for step in steps
    ]
    if not add_cued or not fitted:
        return fitted
    offered = {tool: hint for tool, hint in hints.items() if _first_offering(tool, tools_of)}
    view = [_as_plan_step(step, cued[step["id"]], tools_of) for step in fitted]
    by_id = {step["id"]: step for step in fitted}
    result = []
    for planned in add_cued_steps(view, goal, offered, max_steps=max_steps):
        step = by_id.get(planned["id"])
        tool = planned["tool"]
        if step is not None:
            agent = _member_for(tool, step["agent"], tools_of)
            result.append(TeamStep(**{**step, "agent": agent}))
        elif tool:
            member = _first_offering(tool, tools_of)
            assert member is not None  # only offered tools are added
            result.append(
                TeamStep(
                    id=planned["id"],
                    description=planned["description"],
                    agent=member,
                    status="pending",
                    result=None,
                )
            )
    return result


def _member_for(tool: str | None, agent: str, tools_of: Mapping[str, Collection[str]]) -> str:
    """``agent``, or the first member offered ``tool`` (the tool a step's words cue) when
    ``agent`` is not."""
    if tool is None or tool in tools_of.get(agent, ()):
        return agent
    return _first_offering(tool, tools_of) or agent


def _first_offering(tool: str, tools_of: Mapping[str, Collection[str]]) -> str | None:
    return next((member for member, tools in tools_of.items() if tool in tools), None)


def _as_plan_step(
    step: TeamStep, tool: str | None, tools_of: Mapping[str, Collection[str]]
) -> PlanStep:
    """The step as an agent's plan step: with ``tool``, the tool its words cue, when its member
    is offered it."""
    return PlanStep(
        id=step["id"],
        description=step["description"],
        tool=tool if tool in tools_of.get(step["agent"], ()) else None,
        depends_on=[],
        success_criteria="",
        status="pending",
        attempts=0,
        result=None,
    )
