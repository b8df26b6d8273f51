"""Each team pattern on the real default model, Qwen2.5-Coder-0.5B (slow: CPU inference, one
model for every agent; ``make test`` installs it, elsewhere the tests are skipped with the install
command).

Each test is small (two working members, a few steps, a trivial goal) and asserts only what a
small model reliably does: the run ends with a clear status, the members it reached ran and are
named in the run and the audit log, and the team's shared budget holds. Not answer correctness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import needs_ladder_model
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import AgentSpec, Team, TeamResult
from goalgraph.audit import AuditLog
from goalgraph.llm import LocalChatModel
from goalgraph.spec import DEFAULT_MODEL
from goalgraph.tools.calculator import calculate

pytestmark = needs_ladder_model(DEFAULT_MODEL)

MAX_STEPS = 8
MAX_TOOL_CALLS = 4
ENDED = {"done", "failed", "stopped_limit"}
GOAL = "What is 12*(3+4)?"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return calculate(expression)


@pytest.fixture(scope="module")
def model() -> LocalChatModel:
    spec = AgentSpec(model={"name": DEFAULT_MODEL, "cache": {"enabled": False}})
    return LocalChatModel.from_spec(spec.model)


def run_team(model: LocalChatModel, tmp_path: Path, agents: dict[str, Any], team: dict[str, Any]):
    """Run the team on ``GOAL``; check what holds whatever the model decides; return the result
    and the agents the audit log names."""
    member_limits = {"limits": {"max_steps": 3}}
    spec = AgentSpec(
        builtin_tools=False,
        limits={"max_steps": MAX_STEPS, "max_seconds": 240},
        safety={"max_tool_calls": MAX_TOOL_CALLS, "audit_dir": str(tmp_path / "audit")},
        agents={name: {**member_limits, **settings} for name, settings in agents.items()},
        team=team,
    )
    with Team(spec, model=model, tools=[calculator], checkpointer=InMemorySaver()) as crew:
        result = crew.run(GOAL, thread_id="real")
    assert isinstance(result, TeamResult)
    assert result.status in ENDED and result.message, result
    assert result.counters["steps"] <= MAX_STEPS
    assert result.counters["tool_calls"] <= MAX_TOOL_CALLS
    for run in result.runs:  # each member run ended with a verdict of its own
        assert run["status"] in ENDED and run["counters"]["steps"] <= 3, run
    records = AuditLog(tmp_path / "audit").read("real")
    audited = {record.get("agent") for record in records if record["event"] == "result"}
    # Every member that started (not stopped by a spent team budget first) is in the audit log.
    started = {run["agent"] for run in result.runs if not run["reason"].startswith("team budget")}
    assert audited == started
    return result, audited


def test_pipeline_on_the_default_model(model, tmp_path):
    result, audited = run_team(
        model,
        tmp_path,
        {"solver": {"instructions": "Compute it."}, "writer": {"instructions": "Say it."}},
        {"pattern": "pipeline", "stages": ["solver", "writer"]},
    )
    ran = [run["agent"] for run in result.runs]
    assert ran[0] == "solver"
    # The writer runs exactly when the solver finished; a stage that did not ends the pipeline.
    assert ran == (["solver", "writer"] if result.runs[0]["status"] == "done" else ["solver"])
    assert audited <= set(ran)


def test_orchestrator_on_the_default_model(model, tmp_path):
    result, audited = run_team(
        model,
        tmp_path,
        {
            "calculator": {"description": "computes arithmetic with the calculator"},
            "writer": {"description": "writes the answer in a sentence"},
        },
        {"pattern": "orchestrator"},
    )
    assert result.plan and {step["agent"] for step in result.plan} <= {"calculator", "writer"}
    assert result.runs and result.runs[0]["agent"] == result.plan[0]["agent"]
    assert audited <= {run["agent"] for run in result.runs}


def test_debate_on_the_default_model(model, tmp_path):
    result, audited = run_team(
        model,
        tmp_path,
        {"first": {}, "second": {}, "judge": {}},
        {"pattern": "debate", "debaters": ["first", "second"], "judge": "judge"},
    )
    # Both debaters run side by side, each within half of the team's budget.
    assert sorted(run["agent"] for run in result.runs) == ["first", "second"]
    assert audited == {"first", "second"}  # both started; the judge only asks its model
    if result.status == "done":
        assert result.winner in {"first", "second"}
