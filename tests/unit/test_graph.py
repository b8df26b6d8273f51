"""Every node and route of the graph, driven by the scripted model."""

from __future__ import annotations

from goalgraph.testing import final_answer, garbage, plan, step_done, tool_call


def test_happy_path_calls_tool_and_answers(make_agent):
    agent, model = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="12*(3+4)"),
            final_answer("84"),
        ]
    )
    result = agent.run("What is 12*(3+4)?")
    assert result.status == "done"
    assert result.answer == "84"
    assert result.plan[0]["status"] == "done" and result.plan[0]["result"] == "84"
    assert [o["content"] for o in result.observations] == ["84"]
    # The first attempt at a step offers only its planned tool; finishing only final_answer.
    assert model.tool_names[1] == ["calculator"]
    assert model.tool_names[2] == ["final_answer"]


def test_last_step_answer_mode_needs_no_final_model_call(make_agent):
    agent, model = make_agent(
        [plan(("compute", "calculator")), tool_call("calculator", expression="12*(3+4)")],
        final_answer="last_step",
    )
    result = agent.run("What is 12*(3+4)?")
    assert result.status == "done" and result.answer == "84"
    assert len(model.calls) == 2  # plan and one tool call; no model call to write the answer


def test_a_planned_tool_without_required_arguments_is_called_without_the_model(make_agent):
    agent, model = make_agent([plan(("check the server", "ping"))], final_answer="last_step")
    result = agent.run("Is the server up?")
    assert result.status == "done" and result.answer == "pong"
    assert len(model.calls) == 1  # Only the planner ran.


def test_after_a_failed_attempt_every_action_is_offered(make_agent):
    agent, model = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="1/0"),
            step_done("cannot divide by zero"),
            final_answer("undefined"),
        ]
    )
    result = agent.run("What is 1/0?")
    assert result.status == "done" and result.observations[0]["ok"] is False
    assert set(model.tool_names[2]) == {
        "calculator",
        "boom",
        "write_note",
        "ping",
        "step_done",
        "final_answer",
    }


def test_dependencies_are_kept_and_forward_references_dropped(make_agent):
    agent, _ = make_agent(
        [
            plan(
                {"description": "first", "tool": "calculator", "depends_on": [2]},
                {"description": "second", "tool": "calculator", "depends_on": [1]},
            ),
            tool_call("calculator", expression="1+1"),
            tool_call("calculator", expression="2+2"),
            final_answer("4"),
        ]
    )
    result = agent.run("two steps")
    assert result.status == "done"
    # A forward reference could deadlock the plan, so it is dropped; the backward one is kept.
    assert [s["depends_on"] for s in result.plan] == [[], [1]]
    assert [s["result"] for s in result.plan] == ["2", "4"]


def test_step_done_completes_a_step_without_a_tool(make_agent):
    agent, _ = make_agent([plan("think about it"), step_done("thought"), final_answer("ok")])
    result = agent.run("reflect")
    assert result.status == "done"
    assert result.plan[0]["result"] == "thought"


def test_replan_after_a_failed_step(make_agent):
    agent, model = make_agent(
        [
            plan(("use boom", "boom")),
            tool_call("boom", message="a"),
            tool_call("boom", message="b"),
            plan(("compute instead", "calculator")),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ],
        limits={"max_step_attempts": 2},
    )
    result = agent.run("get five")
    assert result.status == "done" and result.answer == "5"
    assert [s["status"] for s in result.plan] == ["failed", "done"]
    assert result.counters["replans"] == 1
    replan_prompt = model.calls[3][-1].content
    assert "boom: b" in replan_prompt  # The failure reason reaches the replanner.


def test_block_then_retry(make_agent):
    agent, model = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", wrong_argument="1"),  # Schema-invalid: blocked.
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ]
    )
    result = agent.run("six times seven")
    assert result.status == "done" and result.answer == "42"
    assert result.counters["blocked"] == 1
    assert result.plan[0]["attempts"] == 1
    retry_prompt = model.calls[2]
    assert any("Blocked: invalid arguments" in str(m.content) for m in retry_prompt)


def test_loop_detection_blocks_the_third_identical_call(make_agent):
    same = [tool_call("calculator", expression="1+1") for _ in range(3)]
    agent, _ = make_agent(
        [plan(("compute", "write_note")), *same, final_answer("2")],
        limits={"max_step_attempts": 5},
    )
    result = agent.run("loop")
    assert result.status == "done"
    assert result.counters["tool_calls"] == 2
    assert result.counters["blocked"] == 1


def test_step_limit(make_agent):
    calls = [tool_call("calculator", expression=f"{i}+1") for i in range(10)]
    agent, _ = make_agent([plan(("x", "write_note")), *calls], limits={"max_steps": 3})
    result = agent.run("never ends")
    assert result.status == "stopped_limit"
    assert "step limit" in result.message
    assert result.counters["steps"] == 3


def test_replan_limit(make_agent):
    fails = [tool_call("boom", message=str(i)) for i in range(4)]
    agent, _ = make_agent(
        [plan(("a", "boom")), fails[0], plan(("b", "boom")), fails[1]],
        limits={"max_step_attempts": 1, "max_replans": 1},
    )
    result = agent.run("always fails")
    assert result.status == "stopped_limit"
    assert "replan limit" in result.message and "boom: 1" in result.message


def test_time_limit(make_agent):
    calls = [tool_call("calculator", expression=f"{i}+1") for i in range(20)]
    agent, _ = make_agent(
        [plan(("x", "write_note")), *calls], delay_s=0.1, limits={"max_seconds": 0.35}
    )
    result = agent.run("slow")
    assert result.status == "stopped_limit"
    assert "time limit" in result.message
    assert result.counters["elapsed_s"] >= 0.35


def test_garbage_from_the_model_is_a_failed_attempt_not_a_crash(make_agent):
    agent, _ = make_agent(
        [
            garbage("Plan: 1) do it"),
            garbage(),
            tool_call("calculator", expression="2*2"),
            final_answer("4"),
        ]
    )
    result = agent.run("what is 2*2")
    assert result.status == "done" and result.answer == "4"
    # The unparsable plan fell back to pursuing the goal as a single step.
    assert result.plan[0]["description"] == "what is 2*2"


def test_tool_that_raises_becomes_an_error_observation(make_agent):
    agent, _ = make_agent(
        [plan(("x", "boom")), tool_call("boom", message="kaput"), final_answer("gave up")]
    )
    result = agent.run("try boom")
    assert result.status == "done"
    assert result.observations[0]["ok"] is False
    assert "boom: kaput" in result.observations[0]["content"]


def test_empty_goal_fails_clearly(make_agent):
    agent, model = make_agent([])
    for goal in ["", "   \n"]:
        result = agent.run(goal)
        assert result.status == "failed"
        assert "goal is empty" in result.message
    assert model.calls == []


def test_huge_goal_fails_clearly_and_is_kept(make_agent):
    agent, model = make_agent([])
    goal = "x" * 100_000
    result = agent.run(goal, thread_id="big")
    assert result.status == "failed"
    assert "100,000 characters" in result.message
    assert agent.state("big")["goal"] == goal  # Nothing lost: the goal is in the checkpoint.
    assert model.calls == []


def test_exhausted_script_ends_with_a_clear_status(make_agent):
    agent, _ = make_agent(
        [plan(("x", "calculator"))], limits={"max_step_attempts": 1, "max_replans": 0}
    )
    result = agent.run("the model dies")
    assert result.status == "stopped_limit"
    assert "ScriptExhaustedError" in result.message


def test_a_second_goal_on_the_same_thread_starts_clean(make_agent):
    agent, _ = make_agent(
        [
            plan(("a", "calculator")),
            tool_call("calculator", expression="1+1"),
            final_answer("2"),
            plan(("b", "calculator")),
            tool_call("calculator", expression="1+1"),
            final_answer("2"),
        ]
    )
    assert agent.run("first", thread_id="t").answer == "2"
    second = agent.run("second", thread_id="t")
    # Loop detection and counters were reset, so the same call is allowed again.
    assert second.status == "done" and second.counters["blocked"] == 0


def test_summarize_memory_folds_old_messages_into_the_summary(make_agent):
    calls = [tool_call("calculator", expression=f"{i}+{i}") for i in range(6)]
    agent, model = make_agent(
        [plan(("add numbers", "write_note")), *calls, final_answer("done")],
        memory={"window_messages": 4},
        limits={"max_step_attempts": 9},
    )
    result = agent.run("keep adding", thread_id="m1")
    assert result.status == "done"
    state = agent.state("m1")
    assert len(state["messages"]) <= 4
    assert "called calculator" in state["summary"] and "-> 0" in state["summary"]
    # Every kept tool result still follows the call that produced it.
    assert type(state["messages"][0]).__name__ == "AIMessage"
    # think saw the summary instead of the folded messages.
    assert any("Earlier:" in str(m.content) for m in model.calls[-1])


def test_finished_runs_are_stored_as_episodes():
    from conftest import TOOLS
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    from goalgraph import Agent, AgentSpec
    from goalgraph.nodes.summarize_memory import EPISODES_NAMESPACE
    from goalgraph.testing import ScriptedChatModel

    store = InMemoryStore()
    model = ScriptedChatModel(
        responses=[plan(("compute", "calculator")), tool_call("calculator", expression="6*7")],
        goalgraph_profile="tiny",
    )
    with Agent(
        AgentSpec(builtin_tools=False),
        model=model,
        tools=TOOLS,
        checkpointer=InMemorySaver(),
        store=store,
    ) as agent:
        agent.run("What is 6*7?", thread_id="ep")
    episode = store.get(EPISODES_NAMESPACE, "ep")
    assert episode is not None
    assert episode.value["goal"] == "What is 6*7?" and episode.value["answer"] == "42"
