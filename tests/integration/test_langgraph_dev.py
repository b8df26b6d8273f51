"""``langgraph dev`` loads langgraph.json offline and runs the graph (driven with langgraph_sdk)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import free_port, stop_process
from langgraph_sdk import get_client

ROOT = Path(__file__).parents[2]
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "HF_HUB_OFFLINE": "1",
}


@pytest.fixture
def dev_server(tmp_path):
    """``goalgraph studio`` on a free port: it runs ``langgraph dev`` offline."""
    port = free_port()
    # The autouse fixture has already pointed checkpoints, workspace, memory and audit at
    # tmp_path; the data dir stays the user's so the converted bundled model is reused.
    env = {**os.environ, "GOALGRAPH_SAFETY__REQUIRE_APPROVAL": '["write_file"]'}
    for name in OFFLINE:  # goalgraph studio must set these itself
        env.pop(name, None)
    log = (tmp_path / "dev.log").open("w")
    goalgraph = Path(sys.executable).with_name("goalgraph")
    proc = subprocess.Popen(
        [str(goalgraph), "studio", "--port", str(port), "--config", str(ROOT / "langgraph.json")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "langgraph dev did not start in 90 s"
            time.sleep(0.5)
        yield url
    finally:
        stop_process(proc, timeout_s=20)
        log.close()


async def test_dev_server_serves_the_graph(dev_server):
    client = get_client(url=dev_server)
    assistants = await client.assistants.search(graph_id="goalgraph")
    assert len(assistants) == 1
    schemas = await client.assistants.get_schemas(assistants[0]["assistant_id"])
    assert schemas["input_schema"]["required"] == ["goal"]
    nodes = {
        node["id"]
        for node in (await client.assistants.get_graph(assistants[0]["assistant_id"]))["nodes"]
    }
    assert {
        "plan",
        "think",
        "safety_check",
        "act",
        "reflect",
        "replan",
        "summarize_memory",
    } <= nodes

    # A run executes in the server: an empty goal ends cleanly at plan, with no model needed.
    thread = await client.threads.create()
    final = await client.runs.wait(thread["thread_id"], "goalgraph", input={"goal": "  "})
    assert final["status"] == "failed"
    assert "goal is empty" in final["status_reason"]


@pytest.mark.model
async def test_a_run_pauses_for_approval_resumes_and_keeps_its_history(dev_server, tmp_path):
    """The bundled model on the dev server; the fixture makes write_file ask a human."""
    client = get_client(url=dev_server)
    thread = await client.threads.create()
    thread_id = thread["thread_id"]
    goal = {"goal": "Write hello to greeting.txt"}
    values = await client.runs.wait(thread_id, "goalgraph", input=goal)

    paused = await client.threads.get(thread_id)
    assert paused["status"] == "interrupted", values
    (interrupt,) = [i for items in paused["interrupts"].values() for i in items]
    assert interrupt["value"]["tool"] == "write_file"
    assert not (tmp_path / "workspace" / "greeting.txt").exists()

    final = await client.runs.wait(
        thread_id, "goalgraph", command={"resume": {"approve": True, "reason": "fine"}}
    )
    assert final["status"] == "done", final
    assert "hello" in (tmp_path / "workspace" / "greeting.txt").read_text().lower()
    history = await client.threads.get_history(thread_id, limit=100)
    nodes = [step for state in history for step in state["next"]]
    assert "safety_check" in nodes and "act" in nodes
