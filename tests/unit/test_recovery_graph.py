"""Recover or fail fast, through the whole graph with the scripted model.

A replan that only repeats the failed step is asked again and then ends the run; a run that
keeps meeting the same failure, or fails attempt after attempt, ends early as ``failed`` with a
reason starting "no progress:" instead of running into the replan, step or time limit.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from goalgraph.testing import final_answer, garbage, plan, tool_call


def _compute_five_instead() -> list[AIMessage]:
    """A revised plan that computes the answer, its call, and the answer."""
    return [
        plan(("compute instead", "calculator")),
        tool_call("calculator", expression="2+3"),
        final_answer("5"),
    ]


def test_a_replan_that_repeats_the_failed_step_is_asked_again(make_agent):
    agent, model = make_agent(
        [
            plan(("use boom", "boom")),
            tool_call("boom", message="a"),
            tool_call("boom", message="b"),
            plan(("Use  BOOM", "boom")),  # the failed step again
            *_compute_five_instead(),
        ],
        limits={"max_step_attempts": 2},
    )
    result = agent.run("get five")
    assert result.status == "done" and result.answer == "5"
    assert [s["description"] for s in result.plan] == ["use boom", "compute instead"]
    assert result.counters["replans"] == 1
    retry = model.calls[4][-1].content
    assert "Your new plan starts with step 1 again ('Use  BOOM' with boom)" in retry
    assert "boom: b" in retry and "Do not repeat it" in retry
    assert "Do not repeat it" not in model.calls[3][-1].content  # the first ask is unchanged


def _pong_then_boom_twice() -> list[AIMessage]:
    """Plan a step that works (``ping``) and one that fails (``boom``), and fail it twice."""
    return [
        plan(("say pong", "ping"), ("use boom", "boom")),
        tool_call("ping"),
        tool_call("boom", message="a"),
        tool_call("boom", message="b"),
    ]


def test_a_replan_that_only_redoes_done_steps_is_asked_again(make_agent):
    agent, model = make_agent(
        [
            *_pong_then_boom_twice(),
            plan(("say pong (tool: ping) => pong", "ping")),  # the done step, copied
            *_compute_five_instead(),
        ],
        limits={"max_step_attempts": 2},
    )
    result = agent.run("get five")
    assert result.status == "done" and result.answer == "5"
    assert [s["description"] for s in result.plan][-1] == "compute instead"
    retry = model.calls[5][-1].content
    assert "Your new plan only repeats step 1, which is done" in retry
    assert "only repeats" not in model.calls[4][-1].content


def test_a_replan_that_redoes_done_steps_twice_ends_the_run(make_agent):
    copied = plan(("say pong (tool: ping) => pong", "ping"))
    agent, _ = make_agent(
        [
            *_pong_then_boom_twice(),
            copied,
            copied,
        ],
        limits={"max_step_attempts": 2},
        model={"rules": {"direct_fallback": False}},
    )
    result = agent.run("get five")
    assert result.status == "failed"
    assert "the revised plan only redid done steps twice" in result.message


def _failed_and_replanned_twice(step: tuple[str, str], last: tuple[str, str]) -> list[AIMessage]:
    """Plan ``step``, fail it twice (``boom``), then replan it unchanged and as ``last``."""
    failing = [tool_call("boom", message="a"), tool_call("boom", message="b")]
    return [plan(step), *failing, plan(step), plan(last)]


def test_a_replan_that_repeats_it_twice_ends_the_run(make_agent):
    agent, model = make_agent(
        _failed_and_replanned_twice(("use boom", "boom"), ("USE boom", "boom")),
        limits={"max_step_attempts": 2},
    )
    result = agent.run("get five")
    assert result.status == "failed"
    assert result.message.startswith(
        "no progress: the agent could not find another way to do step 1 ('use boom' with boom): "
        'the revised plan repeated it twice, last call boom({"message": "b"}); it failed with: '
        "boom failed: "
    )
    assert len(model.calls) == 5  # no think after the second repeat: the run ends at once
    assert [s["status"] for s in result.plan] == ["failed"]


def test_under_direct_fallback_a_twice_repeated_replan_becomes_the_goal_as_one_step(make_agent):
    """The ``standard`` profile's ``direct_fallback``: when the replanner finds no other way, the
    goal becomes one step with every tool on offer, and its first turn starts afresh, without
    the note that quotes the failed call."""
    agent, model = make_agent(
        [
            *_failed_and_replanned_twice(("use boom", "boom"), ("USE boom", "boom")),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ],
        limits={"max_step_attempts": 2},
        profile="standard",
    )
    result = agent.run("get five")
    assert result.status == "done" and result.answer == "5"
    assert [(s["description"], s["tool"], s["status"]) for s in result.plan] == [
        ("use boom", "boom", "failed"),
        ("get five", None, "done"),
    ]
    fresh_turn = model.calls[5]
    assert "Current step 2: get five" in str(fresh_turn[1].content)
    assert not any("boom failed" in str(message.content) for message in fresh_turn[1:])


def test_a_failing_goal_step_is_not_replaced_by_itself_again(make_agent):
    """The fallback is used once: when the goal as one step fails and the replanner repeats it
    twice, the run ends as ``no progress``."""
    agent, model = make_agent(
        _failed_and_replanned_twice(("get five", "none"), ("get five", "none")),
        limits={"max_step_attempts": 2},
        profile="standard",
    )
    result = agent.run("get five")
    assert result.status == "failed"
    assert result.message.startswith("no progress: the agent could not find another way")
    assert len(model.calls) == 5


def test_the_replanner_sees_each_failed_calls_error_even_after_a_loop_block(make_agent):
    """A call blocked as a loop is reported with its last run's error, which is what tells the
    replanner the way out (a missing file's "did you mean ..."), not only that it looped."""
    agent, model = make_agent(
        [
            plan(("use boom", "boom")),
            tool_call("boom", message="a"),
            tool_call("boom", message="a"),
            tool_call("boom", message="a"),  # blocked: the same call already ran twice
            *_compute_five_instead(),
        ],
        limits={"max_identical_calls": 2},
    )
    result = agent.run("get five")
    assert result.status == "done" and result.answer == "5"
    request = str(model.calls[4][-1].content)
    why = request.split("Why step 1 failed: ", 1)[1]
    assert why.startswith("boom was blocked: loop detected")
    assert "its last run failed with: tool 'boom' failed: RuntimeError: boom: a" in why
    assert (
        "Calls of that step that failed:\n"
        """- boom({"message": "a"}): tool 'boom' failed: RuntimeError: boom: a"""
    ) in request


def test_a_step_that_names_the_failed_calls_arguments_is_a_repeat(make_agent):
    agent, model = make_agent(
        [
            plan(("write the note", "boom")),
            tool_call("boom", message="notes.txt"),
            plan(("Write notes.txt", "boom")),  # other words, the same call
            plan(("ping the server first", "ping")),
        ],
        limits={"max_step_attempts": 1},
        final_answer="last_step",
    )
    result = agent.run("write the note")
    assert result.status == "done" and result.answer == "pong"
    assert "starts with step 1 again ('Write notes.txt' with boom)" in model.calls[3][-1].content


def test_a_repeat_after_a_new_step_is_accepted(make_agent):
    agent, model = make_agent(
        [
            plan(("use boom", "boom")),
            tool_call("boom", message="a"),
            plan(("compute first", "calculator"), ("use boom", "boom")),
            tool_call("calculator", expression="1+1"),
            tool_call("boom", message="with 2"),
        ],
        limits={"max_step_attempts": 1, "max_replans": 1},
    )
    result = agent.run("two ways")
    assert result.status == "stopped_limit" and "replan limit" in result.message
    assert result.counters["replans"] == 1
    assert [s["description"] for s in result.plan] == ["use boom", "compute first", "use boom"]
    assert all("Do not repeat it" not in str(call[-1].content) for call in model.calls)


def test_the_same_failing_call_ends_the_run(make_agent):
    same = [tool_call("boom", message="x") for _ in range(3)]
    agent, _ = make_agent(
        [plan(("use boom", "boom")), *same],
        limits={"max_step_attempts": 9, "max_repeated_failures": 3},
    )
    result = agent.run("loop on a failure")
    assert result.status == "failed"
    # Two runs, then the loop check blocks the third: the same failure proposed again.
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 1
    assert result.message == (
        'no progress: boom({"message": "x"}) failed 3 times with the same error '
        "(limits.max_repeated_failures is 3): tool 'boom' failed: RuntimeError: boom: x"
    )
    assert [s["status"] for s in result.plan] == ["failed"]


def test_the_same_failure_after_a_replan_ends_the_run_with_the_defaults(make_agent):
    agent, _ = make_agent(
        [
            plan(("use boom", "boom")),
            *[tool_call("boom", message="x") for _ in range(3)],  # 2 runs, 1 blocked: replan
            plan(("try boom once more", "boom")),
            tool_call("boom", message="x"),  # blocked again: the 4th time
        ]
    )
    result = agent.run("loop across a replan")
    assert result.status == "failed"
    assert result.counters["replans"] == 1
    assert "failed 4 times with the same error" in result.message


def test_failed_attempts_in_a_row_end_the_run_before_the_second_replan(make_agent):
    fails = [tool_call("boom", message=str(i)) for i in range(6)]
    agent, model = make_agent(
        [plan(("a", "boom")), *fails[:3], plan(("b", "boom")), *fails[3:]],
    )
    result = agent.run("always fails differently")
    assert result.status == "failed"
    assert result.message == (
        "no progress: 6 failed attempts in a row and no step completed "
        "(limits.max_stalled_attempts is 6); last error: tool 'boom' failed: RuntimeError: boom: 5"
    )
    assert result.counters["replans"] == 1  # max_replans is 2: the second replan never came
    assert len(model.calls) == 8


def test_completing_a_step_resets_the_count(make_agent):
    agent, _ = make_agent(
        [
            plan(("first", "calculator"), ("second", "calculator")),
            tool_call("calculator", expression="1/0"),
            tool_call("calculator", expression="1+1"),
            tool_call("calculator", expression="2/0"),
            tool_call("calculator", expression="2+2"),
            final_answer("4"),
        ],
        limits={"max_stalled_attempts": 2},
    )
    result = agent.run("two steps, each failing once")
    assert result.status == "done" and result.answer == "4"


def test_a_success_that_completes_no_step_does_not_reset_the_count(make_agent):
    agent, _ = make_agent(
        [
            plan(("write it down", "write_note")),
            tool_call("calculator", expression="1/0"),
            tool_call("calculator", expression="1+1"),  # works, but the step wants write_note
            tool_call("calculator", expression="2/0"),
        ],
        limits={"max_stalled_attempts": 2},
    )
    result = agent.run("stall")
    assert result.status == "failed"
    assert result.message.startswith("no progress: 2 failed attempts in a row")


def test_unusable_model_output_counts_too(make_agent):
    agent, _ = make_agent(
        [plan(("compute", "calculator")), garbage("hm"), garbage("hm"), garbage("hm")],
        limits={"max_step_attempts": 9, "max_stalled_attempts": 9, "max_repeated_failures": 3},
    )
    result = agent.run("babble")
    assert result.status == "failed"
    assert result.message.startswith(
        "no progress: the model's answer failed 3 times with the same error"
    )


def test_the_cli_shows_the_reason_and_exits_with_failed(make_agent, monkeypatch):
    from goalgraph import cli

    agent, _ = make_agent(
        [plan(("use boom", "boom")), *[tool_call("boom", message="x") for _ in range(3)]],
        limits={"max_repeated_failures": 3},
    )
    result = agent.run("loop")
    app = cli.typer.Typer()
    app.command()(lambda: cli._finish(result, as_json=False))
    shown = CliRunner().invoke(app, [])
    assert shown.exit_code == cli.EXIT_CODES["failed"] == 1
    assert 'status: failed - no progress: boom({"message": "x"}) failed 3 times' in shown.output
