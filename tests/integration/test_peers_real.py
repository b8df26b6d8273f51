"""Peer agents with the real bundled model and goalgraph's real MCP server (slow: CPU).

Each peer runs one short arithmetic task; the 135M model may well fail it, so what is asserted is
that the run was driven, recorded and checked consistently, not that it succeeded.
"""

from __future__ import annotations

import re

import pytest

from goalgraph.eval.checks import FAILURE_CAUSES
from goalgraph.eval.peers import LangGraphPeer, SmolagentsPeer, arun_peer_task, smolagents_model
from goalgraph.eval.records import TaskRun
from goalgraph.eval.suite import TaskSpec
from goalgraph.llm import LocalChatModel
from goalgraph.spec import CacheSpec, ModelSpec

pytestmark = pytest.mark.model

TASK = TaskSpec.model_validate(
    {
        "id": "arith-product",
        "kind": "arithmetic",
        "goal": "What is 12*(3+4)?",
        "check": {"status": "done", "answer_number": 84},
        "needs_tools": ["calculator"],
        # Two model turns (call, then answer) and a short time limit keep the test short.
        "spec": {"limits": {"max_steps": 2, "max_seconds": 60}},
    }
)


@pytest.fixture(scope="module")
def chat() -> LocalChatModel:
    # 96 new tokens hold a calculator call in either format and keep a rambling turn short.
    return LocalChatModel.from_spec(
        ModelSpec(name="smollm2", max_new_tokens=96, cache=CacheSpec(enabled=False))
    )


def _assert_recorded_and_checked(run: TaskRun) -> None:
    assert run.error is None, run.error
    assert run.status in ("done", "failed", "stopped_limit")
    assert 1 <= run.think_steps <= 2 and run.wall_s > 0 and run.plans == []
    assert run.calls_total == len(run.calls) + len(run.unusable_turns)
    if run.calls_total:
        assert run.validity == run.calls_valid / run.calls_total
    for call in run.calls:  # every call got a verdict from the gate (or the framework refused it)
        assert call.decision in ("allow", "block") and call.by in ("policy", "framework")
        assert call.ran == (call.decision == "allow")
    numbers = re.findall(r"-?\d+(?:\.\d+)?", run.answer or "")
    holds = run.status == "done" and any(float(n) == 84 for n in numbers)
    assert run.success == holds == (not run.check_failures)
    assert (run.failure_cause is None) == run.success
    assert run.failure_cause in (None, *FAILURE_CAUSES) and run.failure_cause != "plan_unusable"


async def test_the_langgraph_peer_runs_a_real_task_on_the_bundled_model(chat):
    run = await arun_peer_task(TASK, LangGraphPeer(chat), "smollm2")
    _assert_recorded_and_checked(run)


async def test_the_smolagents_peer_runs_a_real_task_on_the_bundled_model(chat):
    model = smolagents_model(chat)
    # The same weights file, precision and token budget; smolagents' own copy and chat template.
    assert model.model is not chat.hf_model
    assert model.model.name_or_path == chat.hf_model.name_or_path
    assert model.model.dtype == chat.hf_model.dtype
    assert model.kwargs["max_new_tokens"] == chat.max_new_tokens
    run = await arun_peer_task(TASK, SmolagentsPeer(model), "smollm2")
    _assert_recorded_and_checked(run)
