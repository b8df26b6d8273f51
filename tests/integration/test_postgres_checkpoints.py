"""Checkpoints in a real PostgreSQL server: runs, history, approval, time travel, crash recovery.

The server is a throwaway cluster (see ``tests/postgres.py``), started once per session.
Every Agent here opens its own connection, as separate processes would.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import free_port, kill_mid_run_then_resume, recorded_steps
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from postgres import PostgresServer, postgres_server

from goalgraph import Agent, AgentSpec
from goalgraph.checkpoint import CheckpointError, checkpointer_from_url, make_checkpointer
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
from goalgraph.tools.calculator import calculate


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session (found or apt-installed, then initdb'd)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of the module's database, password included."""
    return postgres.url


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return calculate(expression)


@tool
def write_note(text: str) -> str:
    """Write a note (a tool that needs approval here)."""
    return f"wrote {len(text)} characters"


def _agent(url: str, responses: list[AIMessage] | None = None, **spec: Any) -> Agent:
    return Agent(
        AgentSpec(builtin_tools=False, final_answer="model", checkpoint_url=url, **spec),
        model=ScriptedChatModel(responses=list(responses or [])),
        tools=[calculator, write_note],
    )


def _thread() -> str:
    return f"pg-{uuid.uuid4().hex[:8]}"


def test_run_reaches_done_and_a_second_agent_reads_its_history(postgres_url):
    thread = _thread()
    script = [plan(("compute", "calculator")), tool_call("calculator", expression="2+2")]
    with _agent(postgres_url, [*script, final_answer("4")]) as agent:
        result = agent.run("add", thread_id=thread)
    assert result.status == "done" and result.answer == "4"

    with _agent(postgres_url) as reader:
        history = reader.history(thread)
        assert reader.result(thread).answer == "4"
    assert history[0].status == "done" and history[0].next == ()
    assert [h.step for h in history] == sorted((h.step for h in history), reverse=True)
    assert any(h.next == ("think",) for h in history)


def test_approval_pause_is_resumed_by_a_new_agent(postgres_url):
    thread = _thread()
    script = [plan(("write it", "write_note")), tool_call("write_note", text="hello")]
    safety = {"require_approval": ["write_note"]}
    with _agent(postgres_url, script, safety=safety) as agent:
        paused = agent.run("write hello", thread_id=thread)
    assert paused.status == "awaiting_approval" and paused.pending_approval is not None
    assert paused.pending_approval["args"] == {"text": "hello"}

    with _agent(postgres_url, [final_answer("written")], safety=safety) as other:
        done = other.resume(thread, approve=True)
    assert done.status == "done" and done.answer == "written"
    assert done.observations[0]["content"] == "wrote 5 characters"


def test_time_travel_forks_from_an_earlier_checkpoint(postgres_url):
    thread = _thread()
    script = [
        plan(("compute", "calculator")),
        tool_call("calculator", expression="2+2"),
        final_answer("4"),
        tool_call("calculator", expression="3+3"),  # The replay decides differently.
        final_answer("6"),
    ]
    with _agent(postgres_url, script) as agent:
        assert agent.run("add", thread_id=thread).answer == "4"
        before_think = next(h for h in reversed(agent.history(thread)) if h.next == ("think",))
        assert agent.state(thread, before_think.checkpoint_id)["counters"]["steps"] == 0
        replayed = agent.replay(thread, before_think.checkpoint_id)
    assert replayed.status == "done" and replayed.answer == "6"
    with _agent(postgres_url) as reader:
        assert reader.result(thread).answer == "6"


def test_a_dead_server_is_a_quick_checkpoint_error_without_the_password():
    url = f"postgresql://goalgraph:s3cret-pw@127.0.0.1:{free_port()}/goalgraph"
    began = time.monotonic()
    with _agent(url) as agent, pytest.raises(CheckpointError) as caught:
        agent.run("add", thread_id=_thread())
    message = str(caught.value)
    assert time.monotonic() - began < 5
    assert "s3cret-pw" not in message and "\n" not in message
    assert "postgresql://goalgraph:***@127.0.0.1" in message and "unreachable" in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw9@127.0.0.1:notaport/db",
        "postgres://u:pw9@[bad/db",
        "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=pw9",
    ],
)
async def test_bad_urls_are_one_line_checkpoint_errors_that_hide_the_password(url):
    with pytest.raises(CheckpointError, match=r"^the PostgreSQL checkpoint database") as caught:
        async with checkpointer_from_url(url):
            pass
    assert "pw9" not in str(caught.value) and "\n" not in str(caught.value)


async def test_a_wrong_password_is_a_checkpoint_error_without_it(postgres: PostgresServer):
    url = postgres.url.replace(postgres.password, "wrong-pw")
    with pytest.raises(CheckpointError, match="password authentication failed") as caught:
        async with checkpointer_from_url(url):
            pass
    assert "wrong-pw" not in str(caught.value)


async def test_unsupported_urls_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="unsupported checkpoint URL mysql://u:\\*\\*\\*@h"):
        async with checkpointer_from_url("mysql://u:pw@h/db"):
            pass
    async with checkpointer_from_url(f"sqlite:///{tmp_path / 'cp.sqlite'}") as saver:
        assert [c async for c in saver.alist(None)] == []
    assert (tmp_path / "cp.sqlite").exists()


async def test_the_langgraph_json_factory_honours_the_environment(postgres_url, monkeypatch):
    monkeypatch.setenv("GOALGRAPH_CHECKPOINT_URL", postgres_url)
    async with make_checkpointer() as saver:
        assert type(saver).__name__ == "AsyncPostgresSaver"


def test_sigkill_mid_run_then_resume_from_postgres(postgres_url, tmp_path):
    """As test_resume_after_crash, with the worker's checkpoints in PostgreSQL."""
    record = tmp_path / "record.txt"
    env = {
        **os.environ,
        "RECORD_FILE": str(record),
        "CHECKPOINT": str(tmp_path / "unused.sqlite"),  # checkpoint_url wins over the path.
        "GOALGRAPH_CHECKPOINT_URL": postgres_url,
        "THREAD": _thread(),
    }
    result = kill_mid_run_then_resume(env, record)
    assert result["status"] == "done", result
    assert recorded_steps(record) == ["step-1", "step-2", "step-3"]
    assert [s["status"] for s in result["plan"]] == ["done"] * 3
    assert result["counters"]["tool_calls"] == 3
    assert not (tmp_path / "unused.sqlite").exists()
