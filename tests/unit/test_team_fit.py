"""Fitting an orchestrator's steps to the tools its members are offered."""

from __future__ import annotations

from goalgraph.hints import hints_from_payloads
from goalgraph.teams.fit import fit_steps
from goalgraph.teams.state import TeamStep
from goalgraph.tools.hints import BUILTIN_HINTS

HINTS = hints_from_payloads(BUILTIN_HINTS)
TOOLS_OF = {"researcher": ["read_file", "list_files", "search_files"], "writer": ["write_file"]}
GOAL = "Read prices.txt and save the price of a pear in pear.txt"


def steps(*assigned: tuple[str, str]) -> list[TeamStep]:
    return [
        TeamStep(id=i, description=text, agent=agent, status="pending", result=None)
        for i, (text, agent) in enumerate(assigned, 1)
    ]


def assignment(fitted: list[TeamStep]) -> list[tuple[int, str, str]]:
    return [(step["id"], step["description"], step["agent"]) for step in fitted]


def test_a_step_goes_to_the_member_offered_the_tool_it_cues():
    fitted = fit_steps(steps(("Read prices.txt", "writer")), GOAL, TOOLS_OF, HINTS, add_cued=False)
    assert assignment(fitted) == [(1, "Read prices.txt", "researcher")]


def test_a_strongly_cued_tool_no_step_uses_gets_a_step_for_the_member_offered_it():
    fitted = fit_steps(steps(("Read prices.txt", "writer")), GOAL, TOOLS_OF, HINTS, add_cued=True)
    assert assignment(fitted) == [
        (1, "Read prices.txt", "researcher"),
        (2, "Save the price of a pear in pear.txt", "writer"),
    ]
    assert all(step["status"] == "pending" and step["result"] is None for step in fitted)


def test_a_fitting_plan_is_left_as_it_is():
    planned = steps(("Read prices.txt", "researcher"), ("Write 5 to pear.txt", "writer"))
    assert fit_steps(planned, GOAL, TOOLS_OF, HINTS, add_cued=True) == planned


def test_steps_without_a_cue_or_without_a_member_for_it_keep_their_member():
    planned = steps(("Think it over", "writer"), ("Fetch https://example.com", "writer"))
    goal = "Think it over, then fetch https://example.com"
    assert fit_steps(planned, goal, TOOLS_OF, HINTS, add_cued=True) == planned


def test_no_step_is_added_for_a_tool_the_goal_forbids():
    goal = "Read prices.txt. Do not save anything to pear.txt"
    fitted = fit_steps(steps(("Read prices.txt", "writer")), goal, TOOLS_OF, HINTS, add_cued=True)
    assert assignment(fitted) == [(1, "Read prices.txt", "researcher")]


def test_members_without_hinted_tools_change_nothing():
    planned = steps(("Read prices.txt", "writer"))
    assert fit_steps(planned, GOAL, TOOLS_OF, {}, add_cued=True) == planned
