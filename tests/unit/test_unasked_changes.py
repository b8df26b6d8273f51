"""The ``drop_unasked_changes`` profile rule: a goal that only asks questions gets no plan step
whose tool changes things, in its plan or a revised one."""

from __future__ import annotations

from goalgraph.plan import drop_unasked_changes
from goalgraph.state import PlanStep
from goalgraph.testing import final_answer, plan, tool_call

RISK = {"tools": {"risk": {"calculator": "read", "ping": "read", "write_note": "write"}}}


def _step(step_id: int, tool: str | None, depends_on: list[int] | None = None) -> PlanStep:
    return PlanStep(
        id=step_id,
        description=f"step {step_id}",
        tool=tool,
        depends_on=depends_on or [],
        success_criteria="",
        status="pending",
        attempts=0,
        result=None,
    )


def test_a_question_loses_its_changing_steps_and_keeps_the_others_dependencies():
    steps = [_step(1, "list_orders"), _step(2, "place_order", [1]), _step(3, "get_order", [1, 2])]
    kept = drop_unasked_changes(steps, "Which orders are open?", {"place_order"})
    assert [(s["id"], s["tool"], s["depends_on"]) for s in kept] == [
        (1, "list_orders", []),
        (2, "get_order", [1]),
    ]


def test_a_revised_plan_keeps_its_numbering_and_its_dependencies_on_done_steps():
    steps = [_step(4, "place_order", [1]), _step(5, "get_order", [1, 4])]
    kept = drop_unasked_changes(steps, "Is SO-1 open?", {"place_order"}, first_id=4)
    assert [(s["id"], s["tool"], s["depends_on"]) for s in kept] == [(4, "get_order", [1])]


def test_a_goal_that_asks_for_an_action_keeps_every_step():
    steps = [_step(1, "get_product"), _step(2, "place_order", [1])]
    for goal in ("Order 3 clamps for Yuki.", "Can you order 3 clamps for Yuki?"):
        assert drop_unasked_changes(steps, goal, {"place_order"}) is steps


def test_a_question_planned_only_with_changes_becomes_the_goal_as_one_step():
    goal = "Which orders are open?"
    kept = drop_unasked_changes([_step(1, "place_order")], goal, {"place_order"})
    assert [(s["description"], s["tool"]) for s in kept] == [(goal, None)]


def test_the_agent_answers_a_question_without_the_write_it_planned(make_agent):
    agent, _ = make_agent(
        [
            plan(("compute it", "calculator"), ("save it", "write_note")),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ],
        profile="standard",
        **RISK,
    )
    result = agent.run("What is 6*7?", thread_id="q")
    assert result.status == "done" and result.answer == "42"
    assert [s["tool"] for s in result.plan] == ["calculator"]


def test_with_the_rule_off_the_planned_write_waits_for_a_human(make_agent):
    agent, _ = make_agent(
        [
            plan(("compute it", "calculator"), ("save it", "write_note")),
            tool_call("calculator", expression="6*7"),
            tool_call("write_note", text="42"),
        ],
        profile="standard",
        model={"rules": {"drop_unasked_changes": False}},
        **RISK,
    )
    result = agent.run("What is 6*7?", thread_id="q")
    assert [s["tool"] for s in result.plan] == ["calculator", "write_note"]
    assert result.status == "awaiting_approval"
    assert "only asks a question" in str(result.pending_approval)
