"""The plan check that restates a planned answer ("The square root of 1764 is 176.4")."""

from __future__ import annotations

import pytest

from goalgraph.hints import hints_from_payloads
from goalgraph.plan import restated_as_action, steps_from_output
from goalgraph.testing import final_answer, plan, tool_call
from goalgraph.tools.hints import BUILTIN_HINTS

TOOLS = ["calculator", "python", "read_file", "sqlite_query", "write_file"]
HINTS = hints_from_payloads({name: BUILTIN_HINTS[name] for name in TOOLS})


def _output(*steps: tuple[str, str, list[int]]) -> dict:
    return {
        "steps": [
            {"description": d, "tool": t, "depends_on": deps, "success_criteria": ""}
            for d, t, deps in steps
        ]
    }


@pytest.mark.parametrize(
    "statement",
    [
        "The square root of 1764 is 176.4",
        "The answer is 15.5",
        "A jacket costs 80 dollars, and is 15% off.",
        "This is the sum",
        "There are 10080 minutes",
        "Here is the plan:",
        "Sum of the prices:",
        "1. 1. 1. 1.",
    ],
)
def test_a_step_that_states_becomes_the_goal_when_it_is_the_only_step(statement):
    goal = "What is the square root of 1764?"
    assert restated_as_action(statement, "calculator", goal, alone=True, hints=HINTS) == goal


@pytest.mark.parametrize(
    "action",
    [
        "Compute 7*24*60",  # numbers the goal lacks are fine in an action
        "Then read notes.txt",
        "Answer the question",
        "Analyse the theme of the text",
        "Use Python to compute 15 factorial",
    ],
)
def test_a_step_that_acts_is_kept(action):
    assert restated_as_action(
        action, "calculator", "How many minutes in a week?", alone=True, hints=HINTS
    ) == (action)


def test_in_a_longer_plan_the_step_becomes_the_goals_clause_for_its_tool():
    goal = "Count the orders in shop.db and write the number to orders.txt"
    step = "The order count in shop.db is 10."
    assert restated_as_action(step, "sqlite_query", goal, alone=False, hints=HINTS) == (
        "Count the orders in shop.db"
    )
    # No clause cues the tool: the whole goal.
    assert restated_as_action(step, "python", goal, alone=False, hints=HINTS) == goal
    assert restated_as_action(step, None, goal, alone=False, hints=HINTS) == goal


def test_a_clause_that_itself_states_is_not_used():
    goal = "Which port does the server use? It is set in config.yaml."
    assert (
        restated_as_action("The server uses port 80", "read_file", goal, alone=False, hints=HINTS)
        == goal
    )


def test_restated_repeats_collapse_and_dependencies_follow_the_kept_step():
    goal = "Use Python to compute 2**5 and write the result to out.txt"
    steps = steps_from_output(
        _output(
            ("The first step is to open Python.", "python", []),
            ("The second step is to compute it.", "python", [1]),
            ("Write the result to out.txt", "write_file", [2]),
        ),
        tool_names=TOOLS,
        goal=goal,
        hints=HINTS,
    )
    assert [(s["id"], s["description"], s["tool"], s["depends_on"]) for s in steps] == [
        (1, "Use Python to compute 2**5", "python", []),
        (2, "Write the result to out.txt", "write_file", [1]),
    ]


def test_without_a_goal_steps_are_kept_as_planned():
    steps = steps_from_output(
        _output(("The answer is 4", "calculator", [])), tool_names=TOOLS, goal=None
    )
    assert steps[0]["description"] == "The answer is 4"


def test_the_plan_and_replan_nodes_restate_planned_answers(make_agent):
    agent, model = make_agent(
        [
            plan(("The answer is 12", "boom")),
            tool_call("boom", message="a"),
            plan(("The answer is 15.5", "calculator")),
            tool_call("calculator", expression="1764**0.5"),
            final_answer("42"),
        ],
        limits={"max_step_attempts": 1},
    )
    goal = "What is the square root of 1764?"
    result = agent.run(goal)
    assert result.status == "done" and result.answer == "42"
    assert [(s["description"], s["status"]) for s in result.plan] == [
        (goal, "failed"),
        (goal, "done"),
    ]
    # The act turn sees the goal's words, not the planned guess.
    assert "15.5" not in "".join(str(m.content) for m in model.calls[3])
