"""``goalgraph serve``'s task API against a real uvicorn server on 127.0.0.1, over httpx.

The server runs in a thread of the test process so that scripted agents can be served.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from helpers import free_port

from goalgraph.serve import create_app
from goalgraph.testing import final_answer, plan, tool_call

WAIT_S = 20.0


@contextmanager
def served(agent: Any, **options: Any) -> Iterator[str]:
    """Serve ``create_app(agent, **options)`` with uvicorn; yield its base URL; stop it."""
    port = free_port()
    config = uvicorn.Config(
        create_app(agent, **options), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), "uvicorn did not stop"


def wait_for(
    client: httpx.Client, task_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll ``GET /v1/tasks/{id}`` until ``done(body)``; return the body."""
    deadline = time.monotonic() + WAIT_S
    while True:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"task stuck: {body}"
        time.sleep(0.05)


def settled(body: dict[str, Any]) -> bool:
    return body["status"] not in ("queued", "running")


def create(client: httpx.Client, goal: str) -> str:
    response = client.post("/v1/tasks", json={"goal": goal})
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "running")
    return str(response.json()["id"])


def sse_events(client: httpx.Client, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Read the task's whole event stream: ``(event name, data)`` pairs."""
    events = []
    with client.stream("GET", f"/v1/tasks/{task_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                assert name is not None
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def approval_script(*after: Any) -> list[Any]:
    return [plan(("write it", "write_note")), tool_call("write_note", text="hello"), *after]


def test_health_and_a_task_runs_to_its_answer(make_agent):
    agent, _ = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ]
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        assert client.get("/health").json() == {"status": "ok"}
        task_id = create(client, "What is 6*7?")
        body = wait_for(client, task_id, settled)
        assert body["status"] == "done" and body["answer"] == "42"
        assert body["steps_total"] == 1 and body["steps_done"] == 1
        assert body["plan"][0]["status"] == "done" and body["pending_approval"] is None
        assert body["counters"]["tool_calls"] == 1
        listed = client.get("/v1/tasks").json()["tasks"]
        assert [(t["id"], t["status"], t["goal"]) for t in listed] == [
            (task_id, "done", "What is 6*7?")
        ]
        assert client.get("/v1/tasks/nope").status_code == 404
        assert client.post("/v1/tasks", json={"goal": ""}).status_code == 422
        assert client.post(f"/v1/tasks/{task_id}/approve").status_code == 409
        assert client.delete(f"/v1/tasks/{task_id}").status_code == 409


def test_the_event_stream_replays_plan_tool_call_and_end_in_order(make_agent):
    agent, _ = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ]
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        task_id = create(client, "add")
        events = sse_events(client, task_id)  # Live from (about) the start.
        kinds = [name for name, _ in events]
        assert kinds[0] == "plan" and kinds[-1] == "end"
        assert kinds.index("plan") < kinds.index("tool_call") < kinds.index("observation")
        assert events[kinds.index("tool_call")][1]["data"] == {
            "tool": "calculator",
            "args": {"expression": "2+3"},
        }
        assert events[-1][1]["data"]["status"] == "done"
        assert events[-1][1]["data"]["answer"] == "5"
        assert sse_events(client, task_id) == events  # A later stream replays the same events.


def test_approve_resumes_the_run_to_done(make_agent):
    agent, _ = make_agent(
        approval_script(final_answer("written")), safety={"require_approval": ["write_note"]}
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        task_id = create(client, "write hello")
        paused = wait_for(client, task_id, settled)
        assert paused["status"] == "awaiting_approval"
        assert paused["pending_approval"]["tool"] == "write_note"
        assert paused["pending_approval"]["args"] == {"text": "hello"}
        assert paused["counters"]["tool_calls"] == 0
        kinds = [name for name, _ in sse_events(client, task_id)]  # Ends at the pause.
        assert kinds[-2:] == ["approval", "end"]

        response = client.post(f"/v1/tasks/{task_id}/approve")
        assert response.status_code == 202
        done = wait_for(client, task_id, settled)
        assert done["status"] == "done" and done["answer"] == "written"
        assert done["counters"]["tool_calls"] == 1 and done["pending_approval"] is None
        assert client.post(f"/v1/tasks/{task_id}/deny").status_code == 409


def test_deny_blocks_the_call_and_the_run_goes_on(make_agent):
    agent, model = make_agent(
        approval_script(final_answer("not written")), safety={"require_approval": ["write_note"]}
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        task_id = create(client, "write hello")
        assert wait_for(client, task_id, settled)["status"] == "awaiting_approval"
        response = client.post(f"/v1/tasks/{task_id}/deny", json={"reason": "not today"})
        assert response.status_code == 202
        done = wait_for(client, task_id, settled)
    # The denial reaches think as a blocked action; the script then answers.
    assert done["status"] == "done" and done["answer"] == "not written"
    assert done["counters"]["tool_calls"] == 0 and done["counters"]["blocked"] == 1
    assert any("denied by a human: not today" in str(m.content) for m in model.calls[-1])


def test_cancel_stops_a_slow_run_and_keeps_its_checkpoint(make_agent):
    steps = [tool_call("calculator", expression=f"{n}+1") for n in range(20)]
    agent, model = make_agent(
        [plan(("count", "calculator"), ("more", "calculator")), *steps], delay_s=0.4
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        task_id = create(client, "count slowly")
        running = wait_for(client, task_id, lambda body: body["steps_total"] == 2)
        assert running["status"] == "running"
        response = client.delete(f"/v1/tasks/{task_id}")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        calls = len(model.calls)
        time.sleep(1.5)  # Several model turns' worth: a run still going would call the model.
        assert len(model.calls) == calls
        body = client.get(f"/v1/tasks/{task_id}").json()
        assert body["status"] == "cancelled" and body["message"] == "cancelled by the client"
        assert body["steps_total"] == 2  # Read from the checkpoint, which stays.
        events = sse_events(client, task_id)
        assert events[-1] == (
            "end",
            {
                "kind": "end",
                "node": "",
                "data": {"status": "cancelled", "message": "cancelled by the client"},
            },
        )
        assert client.delete(f"/v1/tasks/{task_id}").status_code == 409
        assert client.post(f"/v1/tasks/{task_id}/approve").status_code == 409


def test_api_keys_authenticate_and_isolate_tasks(make_agent):
    agent, _ = make_agent([plan(("answer", None)), final_answer("hi")])
    with served(agent, api_keys=["key-a", "key-b"]) as url:
        anonymous = httpx.Client(base_url=url, timeout=WAIT_S)
        a = httpx.Client(base_url=url, timeout=WAIT_S, headers={"X-API-Key": "key-a"})
        b = httpx.Client(base_url=url, timeout=WAIT_S, headers={"Authorization": "Bearer key-b"})
        wrong = httpx.Client(base_url=url, timeout=WAIT_S, headers={"X-API-Key": "nope"})
        with anonymous, a, b, wrong:
            assert anonymous.get("/health").status_code == 200  # Health needs no key.
            assert anonymous.get("/v1/tasks").status_code == 401
            assert anonymous.post("/v1/tasks", json={"goal": "x"}).status_code == 401
            assert wrong.get("/v1/tasks").status_code == 403
            assert wrong.post("/v1/tasks", json={"goal": "x"}).status_code == 403

            task_id = create(a, "say hi")
            assert wait_for(a, task_id, settled)["answer"] == "hi"
            assert [t["id"] for t in a.get("/v1/tasks").json()["tasks"]] == [task_id]
            assert b.get("/v1/tasks").json() == {"tasks": []}
            for response in (
                b.get(f"/v1/tasks/{task_id}"),
                b.get(f"/v1/tasks/{task_id}/events"),
                b.post(f"/v1/tasks/{task_id}/approve"),
                b.delete(f"/v1/tasks/{task_id}"),
            ):
                assert response.status_code == 404
            assert wrong.get(f"/v1/tasks/{task_id}").status_code == 403
            assert anonymous.get(f"/v1/tasks/{task_id}").status_code == 401


@pytest.mark.parametrize("keys", [None, []])
def test_without_keys_auth_is_off(make_agent, keys):
    agent, _ = make_agent([plan(("answer", None)), final_answer("hi")])
    with served(agent, api_keys=keys) as url, httpx.Client(base_url=url) as client:
        assert client.get("/v1/tasks").json() == {"tasks": []}
