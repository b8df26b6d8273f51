"""The ``openai`` provider end to end, against ``goalgraph serve-model`` as a real HTTP server.

The server is a subprocess on a free port of 127.0.0.1 serving the bundled model through
goalgraph's own runtime; the client side is ``langchain-openai`` through ``endpoint_chat_model``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from helpers import free_port, stop_process
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from goalgraph import Agent, AgentSpec
from goalgraph.llm.endpoint import EndpointError, endpoint_chat_model
from goalgraph.spec import ModelSpec
from goalgraph.tools.calculator import calculate

STARTUP_S = 90.0


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return calculate(expression)


@tool
def word_count(text: str) -> str:
    """Count the words in a text."""
    return str(len(text.split()))


def _command(port: int) -> list[str]:
    script = shutil.which("goalgraph", path=str(Path(sys.executable).parent))
    base = [script] if script else [sys.executable, "-m", "goalgraph.cli"]
    return [*base, "serve-model", "--host", "127.0.0.1", "--port", str(port), "--model", "smollm2"]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``goalgraph serve-model``; yield its base URL (``.../v1``); stop it afterwards."""
    port = free_port()
    home = tmp_path_factory.mktemp("serve")
    log_path = home / "serve.log"
    env = {**os.environ, "GOALGRAPH_HOME": str(home)}  # A fresh generation cache.
    with log_path.open("wb") as log:
        process = subprocess.Popen(_command(port), stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve-model exited early:\n{log_path.read_text()}")
            try:
                models = _get(f"{base_url}/models")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"serve-model did not start:\n{log_path.read_text()}")
                time.sleep(0.5)
        assert [card["id"] for card in models["data"]] == ["smollm2"]
        yield base_url
    finally:
        stop_process(process)


def _model(base_url: str, **fields):
    return endpoint_chat_model(
        ModelSpec(provider="openai", base_url=base_url, name="smollm2", **fields)
    )


@pytest.mark.model
def test_plain_chat(server):
    reply = _model(server, max_new_tokens=16).invoke("Say hello.")
    assert isinstance(reply.content, str)
    assert reply.content.strip()
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] > 0


@pytest.mark.model
def test_streaming_chat(server):
    chunks = list(_model(server, max_new_tokens=12).stream("Count to three."))
    text = "".join(str(chunk.content) for chunk in chunks)
    assert text.strip()
    assert len(chunks) > 2  # Content arrives in pieces, not as one blob.


@pytest.mark.model
def test_raw_stream_of_a_tool_call_ends_with_done(server):
    body = {
        "model": "smollm2",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 48,
        "messages": [{"role": "user", "content": "What is 6*7?"}],
        "tools": [convert_to_openai_tool(calculator)],
        "tool_choice": {"type": "function", "function": {"name": "calculator"}},
    }
    request = urllib.request.Request(
        f"{server}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line.decode().strip() for line in response if line.strip()]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    (call,) = [c for d in deltas for c in d.get("tool_calls", [])]
    assert call["function"]["name"] == "calculator"
    assert "expression" in json.loads(call["function"]["arguments"])
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finishes[-1] == "tool_calls"
    assert events[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.model
def test_bind_tools_required_returns_a_valid_call(server):
    tools = [calculator, word_count]
    bound = _model(server, max_new_tokens=64).bind_tools(tools, tool_choice="any")
    message = bound.invoke(
        [SystemMessage("Use a tool."), HumanMessage("Calculate 12*(3+4) with the calculator.")]
    )
    (call,) = message.tool_calls
    schemas = {t.name: t.tool_call_schema.model_json_schema() for t in tools}
    assert call["name"] in schemas
    jsonschema.validate(call["args"], schemas[call["name"]])


@pytest.mark.model
def test_parallel_tool_calls_are_passed_on_and_checked(server):
    tools = [convert_to_openai_tool(calculator)]
    ask = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Compute 2*3 and 4*5."}],
        "tools": tools,
        "tool_choice": "required",
        "max_tokens": 96,
    }
    status, body = _post(f"{server}/chat/completions", {**ask, "parallel_tool_calls": "yes"})
    assert status == 400 and body["error"]["param"] == "parallel_tool_calls"
    status, body = _post(f"{server}/chat/completions", {**ask, "parallel_tool_calls": True})
    assert status == 200, body
    calls = body["choices"][0]["message"]["tool_calls"]
    assert 1 <= len(calls) <= 4 and len({c["id"] for c in calls}) == len(calls)
    assert all(c["function"]["name"] == "calculator" for c in calls)
    assert all("expression" in json.loads(c["function"]["arguments"]) for c in calls)


@pytest.mark.model
def test_structured_output_matches_schema(server):
    schema = {
        "title": "Person",
        "description": "A person mentioned in the text.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
        },
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    output = (
        _model(server, max_new_tokens=48)
        .with_structured_output(schema)
        .invoke("Alice is 30 years old.")
    )
    assert isinstance(output, dict)
    jsonschema.validate(output, schema)


@pytest.mark.model
def test_bad_request_is_an_openai_error(server):
    status, body = _post(
        f"{server}/chat/completions",
        {"model": "smollm2", "messages": [{"role": "wizard", "content": "hi"}]},
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "wizard" in body["error"]["message"]
    status, body = _post(
        f"{server}/chat/completions",
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "a", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "missing"}},
        },
    )
    assert status == 400, body
    assert "missing" in body["error"]["message"]


@pytest.mark.model
def test_agent_over_http_reaches_done(server, tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    spec = AgentSpec(
        # An endpoint cannot tell its size: the 135M model behind it needs the tiny profile.
        model={"provider": "openai", "base_url": server, "name": "smollm2", "profile": "tiny"},
        workspace=workspace,
        checkpoint_path=tmp_path / "cp.sqlite",
    )
    with Agent(spec) as agent:
        result = agent.run("What is 12*(3+4)?")
    assert result.status == "done", result
    assert result.answer == "84", result
    assert [o["tool"] for o in result.observations if o["ok"]] == ["calculator"]


def test_unreachable_endpoint_is_a_clear_error():
    model = endpoint_chat_model(
        ModelSpec(provider="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"),
        max_retries=0,
    )
    with pytest.raises(EndpointError, match="unreachable"):
        model.invoke("hello")


def test_unreachable_endpoint_ends_the_run_with_a_status(tmp_path):
    spec = AgentSpec(
        model={"provider": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        workspace=tmp_path,
        checkpoint_path=tmp_path / "cp.sqlite",
        limits={"max_steps": 3},
    )
    with Agent(spec, tools=[calculator]) as agent:
        result = agent.run("What is 12*(3+4)?")
    assert result.status in ("failed", "stopped_limit"), result
    assert result.answer is None
    assert "unreachable" in result.message  # The cause reaches the user, not just the log.
