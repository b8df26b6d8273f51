"""Several tool calls in one think turn (``limits.max_parallel_calls``): each passes safety_check
on its own, the allowed ones run at the same time, and reflect judges the turn as a whole."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import TOOLS
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.audit import AuditLog
from goalgraph.nodes.think import actions_from_message
from goalgraph.prompts import PARALLEL_CALLS
from goalgraph.testing import ScriptedChatModel, final_answer, plan, step_done, tool_call

SPANS: dict[str, tuple[float, float]] = {}


@tool
async def wait(label: str, seconds: float = 0.4) -> str:
    """Wait ``seconds``, then answer with ``label`` (a tool that waits, like a network call)."""
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    SPANS[label] = (started, time.perf_counter())
    return f"waited {label}"


def calls(*pairs: tuple[str, dict[str, Any]]) -> AIMessage:
    """One model turn that calls each ``(tool, args)`` pair."""
    return AIMessage(
        content="all at once",
        tool_calls=[
            {"name": name, "args": args, "id": f"call_{index}_{name}"}
            for index, (name, args) in enumerate(pairs)
        ],
    )


@pytest.fixture
def make_agent_with() -> Iterator[Callable[..., tuple[Agent, ScriptedChatModel]]]:
    """Build scripted agents over TOOLS plus ``wait``, with up to 4 calls a turn."""
    agents: list[Agent] = []
    SPANS.clear()

    def build(responses: list[AIMessage], **spec: Any) -> tuple[Agent, ScriptedChatModel]:
        model = ScriptedChatModel(responses=responses)
        spec.setdefault("final_answer", "model")
        limits = {"max_parallel_calls": 4, **spec.pop("limits", {})}
        agent = Agent(
            AgentSpec(builtin_tools=False, limits=limits, **spec),
            model=model,
            tools=[*TOOLS, wait],
            checkpointer=InMemorySaver(),
        )
        agents.append(agent)
        return agent, model

    yield build
    for agent in agents:
        agent.close()


def _overlap(a: str, b: str) -> bool:
    return SPANS[a][0] < SPANS[b][1] and SPANS[b][0] < SPANS[a][1]


def _tool_messages(agent: Agent, thread_id: str) -> list[ToolMessage]:
    return [m for m in agent.state(thread_id)["messages"] if isinstance(m, ToolMessage)]


def test_calls_of_one_turn_run_at_the_same_time_and_complete_the_step(make_agent_with):
    agent, model = make_agent_with(
        [
            plan(("Wait for both", "wait")),
            calls(("wait", {"label": "a"}), ("wait", {"label": "b"}), ("wait", {"label": "c"})),
            final_answer("both waited"),
        ]
    )
    result = agent.run("wait for a, b and c", thread_id="t")
    assert result.status == "done" and result.answer == "both waited"
    # All three waits share one instant: they ran at once, not in a row. (A bound on the run's
    # wall time said the same, but failed on a loaded machine.)
    assert max(start for start, _ in SPANS.values()) < min(end for _, end in SPANS.values())
    assert result.counters["tool_calls"] == 3 and result.counters["steps"] == 2
    assert result.plan[0]["status"] == "done"
    assert result.plan[0]["result"] == "wait: waited a\nwait: waited b\nwait: waited c"
    # The results answer the calls in the order they were made.
    assert [m.tool_call_id for m in _tool_messages(agent, "t")] == [
        "call_0_wait",
        "call_1_wait",
        "call_2_wait",
    ]
    think_prompt = model.calls[1]
    assert PARALLEL_CALLS.strip() in str(think_prompt[0].content)


def test_one_call_a_turn_by_default(make_agent_with):
    agent, model = make_agent_with(
        [
            plan(("Wait", "wait")),
            calls(("wait", {"label": "a"}), ("wait", {"label": "b"})),
            final_answer("done"),
        ],
        limits={"max_parallel_calls": 1},
    )
    result = agent.run("wait", thread_id="t")
    assert result.status == "done"
    assert set(SPANS) == {"a"}  # the second call was not taken
    assert result.counters["tool_calls"] == 1
    assert PARALLEL_CALLS.strip() not in str(model.calls[1][0].content)


def test_a_blocked_call_does_not_stop_the_others_but_fails_the_turn(make_agent_with):
    agent, _ = make_agent_with(
        [
            plan(("Wait and note", "wait")),
            calls(("wait", {"label": "a"}), ("write_note", {"text": "x"})),
            tool_call("wait", label="b"),
            final_answer("done"),
        ],
        safety={"deny_tools": ["write_note"]},
    )
    result = agent.run("wait and note", thread_id="t")
    assert result.status == "done"
    assert set(SPANS) == {"a", "b"}
    messages = _tool_messages(agent, "t")
    assert [m.tool_call_id for m in messages[:2]] == ["call_0_wait", "call_1_write_note"]
    assert messages[0].content == "waited a"
    assert str(messages[1].content).startswith("Blocked:")
    assert result.counters["blocked"] == 1 and result.counters["tool_calls"] == 2
    assert result.plan[0]["attempts"] == 1  # the mixed turn counted as one failed attempt
    assert result.plan[0]["result"] == "waited b"


def test_the_failure_note_says_the_other_calls_worked(make_agent_with):
    agent, model = make_agent_with(
        [
            plan(("Compute and explode", None)),
            calls(("calculator", {"expression": "6*7"}), ("boom", {"message": "down"})),
            step_done("42"),
            final_answer("42"),
        ]
    )
    result = agent.run("compute", thread_id="t")
    assert result.status == "done"
    retry_prompt = model.calls[2]
    note = str(retry_prompt[-1].content)  # the standard profile's feedback_last
    assert note.startswith("Note: ") and "boom failed:" in note and "boom: down" in note
    assert "the other calls of that turn worked" in note


def test_identical_calls_in_one_turn_count_for_loop_detection(make_agent_with):
    agent, _ = make_agent_with(
        [
            plan(("Compute", "calculator")),
            calls(("calculator", {"expression": "1+1"}), ("calculator", {"expression": "1+1"})),
            step_done("2"),
            final_answer("2"),
        ],
        limits={"max_identical_calls": 1},
    )
    result = agent.run("compute", thread_id="t")
    assert result.counters["tool_calls"] == 1 and result.counters["blocked"] == 1
    assert list(agent.state("t")["call_counts"].values()) == [1]


def test_tool_budgets_count_the_calls_of_one_turn(make_agent_with):
    agent, _ = make_agent_with(
        [
            plan(("Wait", "wait")),
            calls(("wait", {"label": "a"}), ("wait", {"label": "b"}), ("wait", {"label": "c"})),
            step_done("enough"),
            final_answer("done"),
        ],
        safety={"max_tool_calls": 2},
    )
    result = agent.run("wait", thread_id="t")
    assert set(SPANS) == {"a", "b"}
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 1


def test_each_call_of_a_turn_asks_for_approval_on_its_own(make_agent_with, tmp_path):
    agent, _ = make_agent_with(
        [
            plan(("Write two notes", "write_note")),
            calls(("write_note", {"text": "one"}), ("write_note", {"text": "second"})),
            step_done("one note written"),
            final_answer("done"),
        ],
        safety={"require_approval": ["write_note"], "audit_dir": str(tmp_path / "audit")},
    )
    paused = agent.run("write two notes", thread_id="t")
    assert paused.status == "awaiting_approval"
    assert paused.pending_approval is not None
    assert paused.pending_approval["args"] == {"text": "one"}
    again = agent.resume("t", approve=True)
    assert again.status == "awaiting_approval"
    assert again.pending_approval is not None
    assert again.pending_approval["args"] == {"text": "second"}
    result = agent.resume("t", approve=False, reason="one is enough")
    assert result.status == "done"
    messages = _tool_messages(agent, "t")
    assert messages[0].content == "wrote 3 characters"
    assert "denied by a human: one is enough" in str(messages[1].content)
    assert result.counters["tool_calls"] == 1 and result.counters["blocked"] == 1
    decisions = [
        (r["tool"], r["decision"], r["by"])
        for r in AuditLog(tmp_path / "audit").read("t")
        if r["event"] == "verdict"
    ]
    assert decisions == [("write_note", "allow", "human"), ("write_note", "block", "human")]


def test_events_show_every_call_and_verdict_of_the_turn(make_agent_with):
    agent, _ = make_agent_with(
        [
            plan(("Wait", "wait")),
            calls(("wait", {"label": "a"}), ("wait", {"label": "b"})),
            final_answer("done"),
        ]
    )
    events = list(agent.stream("wait twice"))
    assert [e.data["args"]["label"] for e in events if e.kind == "tool_call"] == ["a", "b"]
    assert [e.data["decision"] for e in events if e.kind == "verdict"] == ["allow", "allow"]
    assert sorted(e.data["content"] for e in events if e.kind == "observation") == [
        "waited a",
        "waited b",
    ]


def test_several_calls_inside_parallel_steps(make_agent_with):
    def policy(messages: list[BaseMessage], names: list[str]) -> AIMessage:
        if names == ["Plan"]:
            return plan(("first pair", "wait"), ("second pair", "wait"))
        if names == ["final_answer"]:
            return final_answer("four waits")
        step = "1" if "Current step 1" in str(messages[1].content) else "2"
        return calls(("wait", {"label": f"{step}a"}), ("wait", {"label": f"{step}b"}))

    agent, model = make_agent_with([], limits={"max_parallel_steps": 2})
    model.policy = policy
    result = agent.run("wait four times", thread_id="t")
    assert result.status == "done" and result.counters["tool_calls"] == 4
    assert _overlap("1a", "2b") and _overlap("1b", "2a")


def test_a_step_done_beside_tool_calls_is_dropped():
    message = AIMessage(
        content="",
        tool_calls=[
            {"name": "calculator", "args": {"expression": "1"}, "id": "a"},
            {"name": "step_done", "args": {"result": "early"}, "id": "b"},
            {"name": "ping", "args": {}, "id": "c"},
        ],
    )
    actions = actions_from_message(message, most=4)
    assert [a["tool"] for a in actions] == ["calculator", "ping"]
    assert [a["tool"] for a in actions_from_message(message, most=1)] == ["calculator"]
    alone = actions_from_message(step_done("finished"), most=4)
    assert [(a["kind"], a["text"]) for a in alone] == [("step_done", "finished")]
