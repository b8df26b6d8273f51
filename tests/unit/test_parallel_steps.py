"""Parallel plan steps (``limits.max_parallel_steps``): fan-out, join, limits, approvals."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import TOOLS
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.inflight import InFlight
from goalgraph.plan import ready_steps
from goalgraph.testing import ScriptedChatModel, final_answer, plan, step_done, tool_call

SPANS: dict[str, tuple[float, float]] = {}


@tool
async def wait(label: str, seconds: float = 0.3) -> str:
    """Wait ``seconds``, then answer with ``label`` (a tool that waits, like a network call)."""
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    SPANS[label] = (started, time.perf_counter())
    return f"waited {label}"


def _step_of(messages: list[BaseMessage]) -> int | None:
    found = (
        re.search(r"Current step (\d+)", str(messages[1].content)) if len(messages) > 1 else None
    )
    return int(found.group(1)) if found else None


Script = Callable[[int | None, list[str], list[BaseMessage]], AIMessage]


def by_step(steps: list[dict[str, Any]], act: Script, *replans: list[dict[str, Any]]) -> Any:
    """A scripted model's policy: the plan (then each replan), then ``act`` for each think turn,
    by the step its prompt names, so branches get their answers in whatever order they ask."""
    plans = [steps, *replans]

    def policy(messages: list[BaseMessage], names: list[str]) -> AIMessage:
        if names == ["Plan"]:
            return plan(*plans.pop(0))
        if names == ["final_answer"]:
            return final_answer("finished")
        return act(_step_of(messages), names, messages)

    return policy


def waits(step: int | None, names: list[str], messages: list[BaseMessage]) -> AIMessage:
    """Call the step's planned tool: ``wait`` labelled with the step, or ``calculator``."""
    if names == ["wait"]:
        return tool_call("wait", label=f"s{step}")
    if names == ["calculator"]:
        return tool_call("calculator", expression="6*7")
    return step_done("nothing more to do")


@pytest.fixture
def make_parallel() -> Iterator[Callable[..., tuple[Agent, ScriptedChatModel]]]:
    """Build scripted agents over TOOLS plus ``wait``, with parallel steps on by default."""
    agents: list[Agent] = []
    SPANS.clear()

    def build(policy: Any, **spec: Any) -> tuple[Agent, ScriptedChatModel]:
        model = ScriptedChatModel(policy=policy, goalgraph_profile="tiny")
        spec.setdefault("final_answer", "model")
        limits = {"max_parallel_steps": 4, **spec.pop("limits", {})}
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


def _step(description: str, tool_name: str | None, *depends_on: int) -> dict[str, Any]:
    return {"description": description, "tool": tool_name or "none", "depends_on": list(depends_on)}


def _overlap(a: str, b: str) -> bool:
    return SPANS[a][0] < SPANS[b][1] and SPANS[b][0] < SPANS[a][1]


THREE_WAITS = [_step("wait one", "wait"), _step("wait two", "wait"), _step("wait three", "wait")]


def test_independent_steps_overlap_in_time(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits))
    started = time.perf_counter()
    result = agent.run("wait three times")
    took = time.perf_counter() - started
    assert result.status == "done" and result.answer == "finished"
    assert [s["result"] for s in result.plan] == ["waited s1", "waited s2", "waited s3"]
    assert _overlap("s1", "s2") and _overlap("s2", "s3") and _overlap("s1", "s3")
    assert took < 0.8  # three 0.3 s waits at once, not 0.9 s in a row
    assert result.counters["tool_calls"] == 3 and result.counters["steps"] == 4
    assert result.counters["elapsed_s"] < 0.8  # the clock advances by the longest branch
    assert {o["content"] for o in result.observations} == {"waited s1", "waited s2", "waited s3"}


def test_one_parallel_step_is_the_sequential_path(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits), limits={"max_parallel_steps": 1})
    result = agent.run("wait three times")
    assert result.status == "done"
    assert not _overlap("s1", "s2") and not _overlap("s2", "s3")
    assert "branch" not in {entry.node for entry in agent.history(result.thread_id)}


def test_the_concurrency_limit_bounds_the_branches(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits), limits={"max_parallel_steps": 2})
    result = agent.run("wait three times")
    assert result.status == "done"
    assert _overlap("s1", "s2")
    assert SPANS["s3"][0] >= min(SPANS["s1"][1], SPANS["s2"][1])  # third waits for a free slot


def test_dependent_steps_wait_for_the_join(make_parallel):
    steps = [*THREE_WAITS[:2], _step("combine", "wait", 1, 2)]
    agent, model = make_parallel(by_step(steps, waits))
    result = agent.run("wait twice, then combine")
    assert result.status == "done"
    assert _overlap("s1", "s2")
    assert SPANS["s3"][0] >= max(SPANS["s1"][1], SPANS["s2"][1])
    combine_prompt = next(call for call in model.calls if _step_of(call) == 3)
    assert "waited s1" in str(combine_prompt[1].content)  # the join put both results in the plan
    assert "waited s2" in str(combine_prompt[1].content)
    nodes = [entry.node for entry in reversed(agent.history(result.thread_id))]
    assert "branch,branch" in nodes and "join" in nodes


def test_a_failed_branch_triggers_a_replan_and_keeps_the_others(make_parallel):
    def act(step: int | None, names: list[str], messages: list[BaseMessage]) -> AIMessage:
        if names == ["boom"]:
            return tool_call("boom", message="down")
        return waits(step, names, messages)

    steps = [_step("wait", "wait"), _step("explode", "boom")]
    agent, model = make_parallel(
        by_step(steps, act, [_step("compute instead", "calculator")]),
        limits={"max_step_attempts": 1},
    )
    result = agent.run("wait and explode")
    assert result.status == "done"
    assert [(s["id"], s["status"]) for s in result.plan] == [
        (1, "done"),
        (2, "failed"),
        (3, "done"),
    ]
    assert result.counters["replans"] == 1
    replan_prompt = next(
        call for call in model.calls if "Why step 2 failed" in str(call[-1].content)
    )
    assert "boom: down" in str(replan_prompt[-1].content)


def test_loop_detection_spans_the_branches(make_parallel):
    same = [_step("compute", "calculator"), _step("compute again", "calculator")]
    agent, _ = make_parallel(by_step(same, waits), limits={"max_identical_calls": 1})
    result = agent.run("compute twice")
    assert result.counters["tool_calls"] == 1  # the second identical call was blocked
    assert result.counters["blocked"] >= 1
    audit = agent.state(result.thread_id)["call_counts"]
    assert list(audit.values()) == [1]


def test_tool_budgets_span_the_branches(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits), safety={"max_tool_calls": 2})
    result = agent.run("wait three times")
    assert result.counters["tool_calls"] == 2
    assert len(SPANS) == 2
    blocked = [s for s in result.plan if s["result"] == "nothing more to do"]
    assert len(blocked) == 1 and blocked[0]["attempts"] == 1


def test_the_step_limit_spans_the_branches(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits), limits={"max_steps": 2})
    result = agent.run("wait three times")
    assert result.status == "stopped_limit" and "step limit" in result.message
    assert result.counters["steps"] == 2 and len(SPANS) == 2


def test_approve_and_deny_inside_branches_then_time_travel(make_parallel):
    def act(step: int | None, names: list[str], messages: list[BaseMessage]) -> AIMessage:
        if names == ["write_note"]:
            return tool_call("write_note", text=f"note {step}")
        return waits(step, names, messages)

    steps = [_step("wait", "wait"), _step("note a", "write_note"), _step("note b", "write_note")]
    agent, _ = make_parallel(by_step(steps, act), safety={"require_approval": ["write_note"]})
    paused = agent.run("wait and write two notes", thread_id="par")
    assert paused.status == "awaiting_approval"
    first = paused.pending_approval
    assert first is not None and first["tool"] == "write_note"
    again = agent.resume("par", approve=True)
    assert again.status == "awaiting_approval"
    second = again.pending_approval
    assert second is not None and second["step"] != first["step"]
    result = agent.resume("par", approve=False, reason="not now")
    assert result.status == "done"
    by_id = {s["id"]: s for s in result.plan}
    assert by_id[first["step"]]["result"] == "wrote 6 characters"  # "note 2" or "note 3"
    assert by_id[second["step"]]["result"] == "nothing more to do"  # denied, then gave up
    assert by_id[1]["result"] == "waited s1"
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 1
    # Time travel: fork from the checkpoint that fanned out; the approvals are asked again.
    history = agent.history("par")
    fanned = next(entry for entry in history if entry.next and "branch" in entry.next)
    replayed = agent.replay("par", fanned.checkpoint_id)
    assert replayed.status == "awaiting_approval"


def test_events_name_each_branch_s_calls(make_parallel):
    agent, _ = make_parallel(by_step(THREE_WAITS, waits))
    events = list(agent.stream("wait three times"))
    calls = sorted(e.data["args"]["label"] for e in events if e.kind == "tool_call")
    assert calls == ["s1", "s2", "s3"]
    assert sorted(e.data["id"] for e in events if e.kind == "step") == [1, 2, 3]


def test_ready_steps_are_the_pending_steps_with_dependencies_done():
    steps = [
        {**_step("a", None), "id": 1, "status": "done"},
        {**_step("b", None, 1), "id": 2, "status": "pending"},
        {**_step("c", None), "id": 3, "status": "pending"},
        {**_step("d", None, 2), "id": 4, "status": "pending"},
    ]
    assert ready_steps(steps) == [2, 3]  # type: ignore[arg-type]


def test_the_in_flight_ledger_counts_only_earlier_reservations_of_siblings():
    ledger = InFlight()
    first = ledger.reserve("f", 1, "c1", signature="calc:1", tool="calc", at=1.0)
    second = ledger.reserve("f", 2, "c2", signature="calc:1", tool="calc", at=2.0)
    assert ledger.before("f", 1, first).tool_counts == {}  # nobody before the first
    assert ledger.before("f", 2, second).call_counts == {"calc:1": 1}
    assert ledger.reserve("f", 2, "c2", signature="calc:1", tool="calc") == second  # idempotent
    ledger.release("f", 1, "c1")
    assert ledger.before("f", 2, second).tool_counts == {}
    ledger.reserve("f", 1, "think:0", steps=1)
    assert ledger.before("f", 2, second + 10).steps == 1
    ledger.drop("f")
    assert ledger.before("f", 2, second + 10).steps == 0


def test_the_parallel_steps_benchmark_runs_in_quick_mode(capsys):
    from helpers import load_benchmark

    result = load_benchmark("parallel_steps").main(["--quick"])
    assert [row["k"] for row in result["results"]] == [2, 4]
    assert all(row["ratio"] > 0 for row in result["results"])  # no timing threshold on a CI box
    assert "speed-up: k=2" in capsys.readouterr().out
