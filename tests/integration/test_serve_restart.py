"""``goalgraph serve`` killed with SIGKILL mid-run comes back with every task: none is lost.

The server runs as a subprocess (a small launcher written by the test: the app over a scripted
policy model with a delay per call, served by uvicorn), so that it can be killed like a crashed
process; a second process on the same checkpoint and registry files then finishes the tasks.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from helpers import free_port, stop_process

WAIT_S = 60.0

LAUNCHER = textwrap.dedent(
    '''
    """Serve goalgraph over a scripted model: launcher.py PORT CHECKPOINT DELAY_S [APPROVE]."""
    import re
    import sys

    import uvicorn
    from langchain_core.tools import tool

    from goalgraph import Agent, AgentSpec
    from goalgraph.serve import create_app
    from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
    from goalgraph.tools.calculator import calculate


    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression like 12*(3+4)."""
        return calculate(expression)


    def policy(messages, tools):
        """Everything derives from the goal "compute A+B", so cross-wired runs would show."""
        a, b = re.search(r"Goal: compute (\\d+)\\+(\\d+)", str(messages[1].content)).groups()
        if tools == ["Plan"]:
            return plan((f"compute {a}+{b}", "calculator"))
        if tools == ["final_answer"]:
            return final_answer(f"{a}+{b}={int(a) + int(b)}")
        return tool_call("calculator", expression=f"{a}+{b}")


    port, checkpoint, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    approval = ["calculator"] if len(sys.argv) > 4 else []
    spec = AgentSpec(
        builtin_tools=False,
        checkpoint_path=checkpoint,
        final_answer="model",
        safety={"require_approval": approval},
    )
    model = ScriptedChatModel(policy=policy, delay_s=delay)
    app = create_app(lambda: Agent(spec, model=model, tools=[calculator]), max_concurrent=2)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    '''
)


@contextmanager
def server(
    tmp_path: Path, *extra: str, delay_s: float = 0.3
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the launcher on a free port; yield its URL and process; stop it if still alive."""
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    port = free_port()
    checkpoint = tmp_path / "serve-checkpoints.sqlite"
    process = subprocess.Popen(
        [sys.executable, str(launcher), str(port), str(checkpoint), str(delay_s), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + WAIT_S
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url, process
    finally:
        if process.poll() is None:
            stop_process(process)


def stored_statuses(tmp_path: Path) -> dict[str, str]:
    """Read the task registry beside the checkpoints: task id -> stored status."""
    path = tmp_path / "serve-checkpoints.sqlite.tasks.sqlite"
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT id, status FROM tasks").fetchall())


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def wait_all_settled(client: httpx.Client, count: int) -> list[dict[str, object]]:
    """Poll until ``count`` tasks are listed and none is queued or running; return them."""
    deadline = time.monotonic() + WAIT_S
    while True:
        tasks = client.get("/v1/tasks").json()["tasks"]
        if len(tasks) >= count and all(t["status"] not in ("queued", "running") for t in tasks):
            return [client.get(f"/v1/tasks/{t['id']}").json() for t in tasks]
        assert time.monotonic() < deadline, f"tasks stuck: {tasks}"
        time.sleep(0.1)


def test_sigkill_mid_run_then_restart_finishes_every_task(tmp_path):
    goals = {f"compute 17+{n}": f"17+{n}={17 + n}" for n in range(6)}
    with server(tmp_path) as (url, process), httpx.Client(base_url=url, timeout=10) as client:
        ids = {}
        for goal in goals:
            response = client.post("/v1/tasks", json={"goal": goal})
            assert response.status_code == 202, response.text
            ids[response.json()["id"]] = goal
        deadline = time.monotonic() + WAIT_S
        while not any(t["status"] == "done" for t in client.get("/v1/tasks").json()["tasks"]):
            assert time.monotonic() < deadline, "no task finished before the kill"
            time.sleep(0.05)
        kill(process)

    before = stored_statuses(tmp_path)
    assert set(before) == set(ids)  # Every accepted task was stored before the client heard.
    unfinished = {task_id for task_id, status in before.items() if status in ("queued", "running")}
    assert unfinished, f"the kill came too late to test anything: {before}"

    with server(tmp_path) as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        tasks = wait_all_settled(client, len(ids))

    assert {task["id"] for task in tasks} == set(ids)  # None lost, none invented.
    for task in tasks:
        assert task["goal"] == ids[task["id"]]
        if task["status"] == "failed":
            assert task["message"], task
        else:
            assert task["status"] == "done", task
            assert task["answer"] == goals[task["goal"]], task  # Not cross-wired.
    assert sum(task["status"] == "done" for task in tasks) == len(ids)
    assert set(stored_statuses(tmp_path).values()) == {"done"}


def test_a_task_awaiting_approval_still_awaits_it_after_a_crash(tmp_path):
    with server(tmp_path, "approve", delay_s=0.0) as (url, process):
        with httpx.Client(base_url=url, timeout=10) as client:
            task_id = client.post("/v1/tasks", json={"goal": "compute 2+3"}).json()["id"]
            deadline = time.monotonic() + WAIT_S
            while client.get(f"/v1/tasks/{task_id}").json()["status"] != "awaiting_approval":
                assert time.monotonic() < deadline, "the task never asked for approval"
                time.sleep(0.05)
        kill(process)

    restarted = server(tmp_path, "approve", delay_s=0.0)
    with restarted as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        paused = client.get(f"/v1/tasks/{task_id}").json()
        assert paused["status"] == "awaiting_approval", paused
        assert paused["pending_approval"]["tool"] == "calculator"
        assert paused["pending_approval"]["args"] == {"expression": "2+3"}
        assert client.post(f"/v1/tasks/{task_id}/approve").status_code == 202
        [done] = wait_all_settled(client, 1)
    assert done["status"] == "done" and done["answer"] == "2+3=5", done
