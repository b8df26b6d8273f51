"""A team served like an agent: the task API and LangServe over a real uvicorn server, and
``goalgraph serve --team`` as a user starts it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TOOLS
from helpers import free_port, stop_process
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from test_serve_cli import CLI, STARTUP_S
from test_serve_tasks import WAIT_S, create, served, settled, sse_events, wait_for

from goalgraph import AgentSpec, Team
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

EXAMPLES = Path(__file__).parents[2] / "examples" / "teams"
AGENTS = {
    "researcher": {"instructions": "Find facts."},
    "writer": {"instructions": "Write it up.", "safety": {"require_approval": ["write_note"]}},
}


def scripted(*responses: AIMessage) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), goalgraph_profile="tiny")


def pipeline_team(**spec: Any) -> Team:
    """A researcher computes, a writer saves a note (after approval) and answers."""
    models = {
        "researcher": scripted(
            plan(("compute", "calculator")),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ),
        "writer": scripted(
            plan(("save it", "write_note")),
            tool_call("write_note", text="42"),
            final_answer("saved 42"),
        ),
    }
    return Team(
        AgentSpec(
            builtin_tools=False,
            final_answer="model",
            agents=AGENTS,
            team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
            **spec,
        ),
        model=scripted(),
        models=models,
        tools=TOOLS,
        checkpointer=InMemorySaver(),
    )


def test_a_team_task_pauses_in_a_member_and_approve_finishes_it():
    team = pipeline_team()
    with served(team) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        task_id = create(client, "What is 6*7? Save it.")
        paused = wait_for(client, task_id, settled)
        assert paused["status"] == "awaiting_approval", paused
        assert paused["pending_approval"]["agent"] == "writer"
        assert paused["pending_approval"]["tool"] == "write_note"
        assert [run["agent"] for run in paused["runs"]] == ["researcher"]

        assert client.post(f"/v1/tasks/{task_id}/approve").status_code == 202
        done = wait_for(client, task_id, lambda body: body["status"] == "done")
        assert done["answer"] == "saved 42"
        assert [(r["agent"], r["status"]) for r in done["runs"]] == [
            ("researcher", "done"),
            ("writer", "done"),
        ]
        assert done["counters"]["tool_calls"] == 2  # the team's shared budget

        events = sse_events(client, task_id)
        calls = [
            (data.get("agent"), data["data"]["tool"])
            for name, data in events
            if name == "tool_call"
        ]
        assert calls == [("researcher", "calculator"), ("writer", "write_note")]
        assert events[-1][0] == "end" and events[-1][1]["data"]["status"] == "done"


def test_langserve_invokes_a_team_and_the_thread_route_resumes_its_member():
    team = pipeline_team()
    with served(team) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        response = client.post(
            "/agent/invoke",
            json={"input": {"goal": "What is 6*7? Save it."}},
            headers={"X-Thread-Id": "team-1"},
        )
        assert response.status_code == 200, response.text
        output = response.json()["output"]
        assert output["pending_approval"]["tool"] == "write_note"
        assert output["pending_approval"]["agent"] == "writer"
        assert [run["agent"] for run in output["runs"]] == ["researcher"]

        resumed = client.post("/agent/threads/team-1/resume", json={"approve": True})
        assert resumed.status_code == 200, resumed.text
        result = resumed.json()
        assert result["status"] == "done" and result["answer"] == "saved 42"
        assert [run["agent"] for run in result["runs"]] == ["researcher", "writer"]
        assert client.get("/agent/threads/team-1").json()["status"] == "done"


def test_serve_command_serves_a_team_spec(tmp_path):
    """``goalgraph serve --team``: the team's graph is built at startup (no model is loaded
    until a goal arrives) and its input schema is the team's goal."""
    port = free_port()
    env = {**os.environ, "GOALGRAPH_HOME": str(tmp_path)}
    env.pop("GOALGRAPH_CHECKPOINT_PATH", None)
    log_path = tmp_path / "serve.log"
    spec = EXAMPLES / "pipeline.yaml"
    command = [str(CLI), "serve", "--port", str(port), "--team", str(spec)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"goalgraph serve --team exited early:\n{log_path.read_text()}")
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"goalgraph serve --team did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
        assert httpx.get(f"{url}/v1/tasks").json() == {"tasks": []}
        schema = httpx.get(f"{url}/agent/input_schema").json()
        assert "goal" in schema["properties"]
    finally:
        stop_process(process)
    assert "Application shutdown complete" in log_path.read_text()


def test_serve_command_refuses_spec_with_team():
    from typer.testing import CliRunner

    from goalgraph.cli import app

    spec = str(EXAMPLES / "pipeline.yaml")
    both = CliRunner().invoke(app, ["serve", "--team", spec, "--spec", spec])
    assert both.exit_code != 0 and "either --spec or --team" in both.output
