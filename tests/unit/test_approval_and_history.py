"""Human approval through interrupt(), resume, state history and time travel."""

from __future__ import annotations

import itertools

import pytest

from goalgraph.testing import final_answer, plan, tool_call


def _approval_script():
    return [
        plan(("write it", "write_note")),
        tool_call("write_note", text="hello"),
    ]


def test_approval_pauses_then_approve_runs_the_tool(make_agent):
    agent, _ = make_agent(
        [*_approval_script(), final_answer("written")],
        safety={"require_approval": ["write_note"]},
    )
    paused = agent.run("write hello", thread_id="a1")
    assert paused.status == "awaiting_approval"
    assert paused.pending_approval["tool"] == "write_note"
    assert paused.pending_approval["args"] == {"text": "hello"}
    assert paused.counters["tool_calls"] == 0  # Nothing ran before the decision.

    done = agent.resume("a1", approve=True)
    assert done.status == "done" and done.answer == "written"
    assert done.observations[0]["content"] == "wrote 5 characters"


def test_deny_reaches_think_as_a_blocked_action_with_its_reason(make_agent):
    agent, model = make_agent(
        [*_approval_script(), final_answer("not written")],
        safety={"require_approval": ["*"]},
    )
    assert agent.run("write hello", thread_id="d1").status == "awaiting_approval"
    done = agent.resume("d1", approve=False, reason="not today")
    assert done.status == "done"
    assert done.counters["tool_calls"] == 0 and done.counters["blocked"] == 1
    last_prompt = model.calls[-1]
    assert any("denied by a human: not today" in str(m.content) for m in last_prompt)


def test_resume_arguments_are_checked(make_agent):
    agent, _ = make_agent(_approval_script(), safety={"require_approval": ["write_note"]})
    with pytest.raises(ValueError, match="no run"):
        agent.resume("nope")
    agent.run("write", thread_id="c1")
    with pytest.raises(ValueError, match="waiting for approval"):
        agent.resume("c1")


def test_history_and_time_travel(make_agent):
    agent, _ = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="2+2"),
            final_answer("4"),
            # Replayed from the checkpoint before think: a different decision this time.
            tool_call("calculator", expression="3+3"),
            final_answer("6"),
        ]
    )
    assert agent.run("add", thread_id="h1").answer == "4"
    history = agent.history("h1")
    assert history[0].status == "done" and history[0].next == ()
    assert [h.step for h in history] == sorted((h.step for h in history), reverse=True)
    # Each checkpoint names the node that wrote it, the one the checkpoint before scheduled.
    assert [h.node for h in reversed(history)][:5] == [
        "input",
        "__start__",
        "plan",
        "think",
        "safety_check",
    ]
    assert all(newer.node in older.next for newer, older in itertools.pairwise(history))
    before_think = next(h for h in reversed(history) if h.next == ("think",))
    assert agent.state("h1", before_think.checkpoint_id)["counters"]["steps"] == 0

    replayed = agent.replay("h1", before_think.checkpoint_id)
    assert replayed.status == "done" and replayed.answer == "6"
    assert agent.result("h1").answer == "6"  # The fork is now the thread's head.
