"""The goal as one step: it takes as many calls as the goal needs (``plan_directly``, and the
planner's and replanner's fallbacks), with the safety layer and recovery around each call."""

from __future__ import annotations

from goalgraph.testing import final_answer, garbage, plan, step_done, tool_call


def test_plan_directly_skips_the_planner_and_acts_until_the_final_answer(make_agent):
    agent, model = make_agent(
        [
            tool_call("calculator", expression="2+3"),
            tool_call("write_note", text="5"),
            final_answer("5, noted"),
        ],
        profile="standard",
        model={"rules": {"plan_directly": True}},
    )
    result = agent.run("Compute 2+3 and note it")
    assert result.status == "done" and result.answer == "5, noted"
    assert [o["tool"] for o in result.observations] == ["calculator", "write_note"]
    assert len(model.calls) == 3  # no planner turn
    assert [(s["description"], s["tool"], s["status"]) for s in result.plan] == [
        ("Compute 2+3 and note it", None, "done")
    ]
    assert result.plan[0]["result"] == "5, noted"


def test_the_goal_step_ends_at_step_done_then_the_model_answers(make_agent):
    agent, _ = make_agent(
        [
            tool_call("calculator", expression="2+3"),
            tool_call("calculator", expression="5*2"),
            step_done("10"),
            final_answer("10"),
        ],
        profile="standard",
        model={"rules": {"plan_directly": True}},
    )
    result = agent.run("Add 2 and 3, then double it")
    assert result.status == "done" and result.answer == "10"
    assert [o["args"] for o in result.observations] == [
        {"expression": "2+3"},
        {"expression": "5*2"},
    ]
    assert result.plan[0]["status"] == "done" and result.plan[0]["result"] == "10"


def test_a_planned_step_without_a_tool_still_ends_at_its_first_successful_call(make_agent):
    """Only the goal as one step runs on; a step the planner wrote without a tool keeps the
    one-call-per-step rule that suits small models."""
    agent, _ = make_agent(
        [
            plan(("add the numbers", None)),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ],
        profile="standard",
    )
    result = agent.run("What is 2+3?")
    assert result.status == "done"
    assert result.plan[0]["status"] == "done" and result.plan[0]["result"] == "5"


def test_a_planner_that_emits_garbage_falls_back_to_the_goal_as_one_step_of_several_calls(
    make_agent,
):
    agent, _ = make_agent(
        [
            garbage(),
            tool_call("calculator", expression="6*7"),
            tool_call("write_note", text="42"),
            final_answer("42"),
        ],
        profile="standard",
    )
    result = agent.run("Compute 6*7 and note it")
    assert result.status == "done" and result.answer == "42"
    assert [o["tool"] for o in result.observations] == ["calculator", "write_note"]
