"""The agent over real MCP server processes and a real SQLite checkpoint file (scripted model)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from goalgraph import Agent, AgentSpec
from goalgraph.checkpoint import CheckpointError
from goalgraph.testing import ScriptedChatModel, final_answer, plan, step_done, tool_call

SERVER = Path(__file__).parents[1] / "servers" / "mcp_testing_server.py"


def _testing_server(**env: str) -> dict:
    # Trusted: these tests are about restarts, and an untrusted server's output would taint the
    # run and make its next exec call (its tools carry no annotations) wait for a human.
    return {
        "testing": {
            "command": sys.executable,
            "args": [str(SERVER)],
            "env": env or None,
            "trust": "trusted",
        }
    }


def test_calculator_through_goalgraph_mcp_server_with_sqlite(tmp_path):
    model = ScriptedChatModel(
        responses=[
            plan(("compute", "calculator")),
            tool_call("calculator", expression="12*(3+4)"),
            final_answer("84"),
        ],
        goalgraph_profile="tiny",  # the step's planned tool is the only choice
    )
    spec = AgentSpec(workspace=tmp_path / "ws", checkpoint_path=tmp_path / "cp.sqlite")
    with Agent(spec, model=model) as agent:
        result = agent.run("What is 12*(3+4)?", thread_id="mcp-1")
    assert result.status == "done" and result.answer == "84"
    assert result.observations[0]["content"] == "84"
    assert model.tool_names[1] == ["calculator"]  # The step's planned tool, from the server.
    # The run is on disk: a new agent (new process state) reads its history and result.
    with Agent(spec, model=ScriptedChatModel()) as again:
        assert again.result("mcp-1").answer == "84"
        assert len(again.history("mcp-1")) >= 6


def test_mcp_server_dying_mid_run_is_restarted(tmp_path):
    model = ScriptedChatModel(
        responses=[
            plan(("echo", "echo")),
            tool_call("die"),
            tool_call("echo", text="hi"),
            step_done("hi"),
        ],
        goalgraph_profile="tiny",  # the done step's result is the answer
    )
    spec = AgentSpec(
        builtin_tools=False,
        mcpServers=_testing_server(),
        checkpoint_path=tmp_path / "cp.sqlite",
        limits={"max_step_attempts": 2, "max_replans": 0},
    )
    with Agent(spec, model=model) as agent:
        result = agent.run("say hi", thread_id="dies")
    assert result.status == "done", result.message
    died, echoed = result.observations
    assert not died["ok"] and "testing" in died["content"]  # It names the dead server.
    assert echoed["ok"] and echoed["content"] == "hi"  # on the restarted server


def test_mcp_server_that_stays_dead_ends_the_run_cleanly(tmp_path):
    model = ScriptedChatModel(
        responses=[
            plan(("echo", "echo")),
            tool_call("die"),
            tool_call("echo", text="hi"),
            tool_call("echo", text="again"),
        ]
    )
    spec = AgentSpec(
        builtin_tools=False,
        mcpServers=_testing_server(),
        checkpoint_path=tmp_path / "cp.sqlite",
        limits={"max_step_attempts": 2, "max_replans": 0},
        tools={"max_restarts": 0},
    )
    with Agent(spec, model=model) as agent:
        result = agent.run("say hi", thread_id="dies")
        assert result.status == "stopped_limit"
        assert [o["ok"] for o in result.observations] == [False, False]
        assert "testing" in result.observations[-1]["content"]  # It names the dead server.
        assert agent.state("dies")["goal"] == "say hi"


def test_tool_server_that_cannot_start_fails_the_run_clearly(tmp_path):
    spec = AgentSpec(
        builtin_tools=False,
        checkpoint_path=tmp_path / "cp.sqlite",
        mcpServers={"ghost": {"command": str(tmp_path / "no-such-binary")}},
    )
    with Agent(spec, model=ScriptedChatModel()) as agent:
        result = agent.run("anything")
    assert result.status == "failed"
    assert "tools unavailable" in result.message and "ghost" in result.message


def test_corrupt_checkpoint_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "cp.sqlite"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    spec = AgentSpec(builtin_tools=False, checkpoint_path=path)
    with (
        Agent(spec, model=ScriptedChatModel()) as agent,
        pytest.raises(CheckpointError, match="unreadable"),
    ):
        agent.run("anything")
    assert path.read_bytes() == garbage


@pytest.mark.parametrize("approve", [True, False])
def test_approval_survives_the_process_and_decides_the_real_tool(tmp_path, approve):
    def script():
        return ScriptedChatModel(
            responses=[
                plan(("save it", "write_file")),
                tool_call("write_file", path="a.txt", content="hi"),
                final_answer("finished"),
            ]
        )

    spec = AgentSpec(
        workspace=tmp_path / "ws",
        checkpoint_path=tmp_path / "cp.sqlite",
        final_answer="model",
        safety={"require_approval": ["write_file"]},
    )
    model = script()
    with Agent(spec, model=model) as agent:
        paused = agent.run("save hi to a.txt", thread_id="ap")
    assert paused.status == "awaiting_approval"
    assert paused.pending_approval["args"] == {"path": "a.txt", "content": "hi"}
    assert not (tmp_path / "ws" / "a.txt").exists()

    # A new agent (as after a restart) answers from the checkpoint; the script continues.
    resumed_model = ScriptedChatModel(responses=model.responses)
    with Agent(spec, model=resumed_model) as agent:
        done = agent.resume("ap", approve=approve, reason="ok" if approve else "no writes")
    assert done.status == "done" and done.answer == "finished"
    assert (tmp_path / "ws" / "a.txt").exists() is approve
    if not approve:
        assert done.counters["blocked"] == 1
        assert any("denied by a human: no writes" in str(m.content) for m in resumed_model.calls[0])
