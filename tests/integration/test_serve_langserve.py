"""The LangServe routes of ``goalgraph serve`` (``/agent/...``) against a real uvicorn server."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from test_serve_tasks import WAIT_S, served

from goalgraph.testing import final_answer, plan, tool_call


def script(answer: str) -> list:
    return [
        plan(("compute", "calculator")),
        tool_call("calculator", expression="6*7"),
        final_answer(answer),
    ]


def test_invoke_runs_a_goal_on_the_thread_from_the_header(make_agent):
    agent, _ = make_agent(script("42"))
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        response = client.post(
            "/agent/invoke",
            json={"input": {"goal": "What is 6*7?"}},
            headers={"X-Thread-Id": "ls-1"},
        )
        assert response.status_code == 200, response.text
        output = response.json()["output"]
        assert output["status"] == "done" and output["answer"] == "42"
        assert output["plan"][0]["status"] == "done"
    assert agent.result("ls-1").answer == "42"  # The header named the checkpointed thread.


def test_stream_yields_node_updates_with_the_thread_from_config(make_agent):
    agent, _ = make_agent(script("42"))
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        body = {"input": {"goal": "6*7"}, "config": {"configurable": {"thread_id": "ls-2"}}}
        with client.stream("POST", "/agent/stream", json=body) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
    assert "event: data" in text and "event: end" in text
    assert '"plan"' in text and '"act"' in text
    assert agent.result("ls-2").answer == "42"


def test_playground_page_and_keys(make_agent):
    agent, _ = make_agent(script("42"))
    with served(agent, api_keys=["k"]) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        assert client.post("/agent/invoke", json={"input": {"goal": "x"}}).status_code == 401
        headers = {"X-API-Key": "k", "X-Thread-Id": "mine"}
        page = client.get("/agent/playground/", headers=headers)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<html" in page.text.lower()
        bad = client.post(
            "/agent/invoke",
            json={"input": {"goal": "x"}},
            headers={**headers, "X-Thread-Id": "../x"},
        )
        assert bad.status_code == 400
        response = client.post("/agent/invoke", json={"input": {"goal": "x"}}, headers=headers)
        assert response.status_code == 200 and response.json()["output"]["answer"] == "42"
    with pytest.raises(ValueError, match="no run"):
        agent.result("mine")  # Not at the bare id: threads are namespaced per key.
    digest = hashlib.sha256(b"k").hexdigest()[:16]
    assert agent.result(f"{digest}-mine").answer == "42"


def test_invoke_pauses_for_approval_and_the_resume_route_continues(make_agent):
    agent, _ = make_agent(
        [plan(("write it", "write_note")), tool_call("write_note", text="hi"), final_answer("ok")],
        safety={"require_approval": ["write_note"]},
    )
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        headers = {"X-Thread-Id": "ap-1"}
        paused = client.post("/agent/invoke", json={"input": {"goal": "write hi"}}, headers=headers)
        assert paused.status_code == 200, paused.text
        pending = paused.json()["output"]["pending_approval"]
        assert pending["tool"] == "write_note" and pending["args"] == {"text": "hi"}

        state = client.get("/agent/threads/ap-1").json()
        assert state["status"] == "awaiting_approval" and state["thread_id"] == "ap-1"
        assert client.post("/agent/threads/ap-1/resume", json={}).status_code == 409

        done = client.post("/agent/threads/ap-1/resume", json={"approve": True})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "done" and done.json()["answer"] == "ok"
        assert done.json()["observations"][0]["content"] == "wrote 2 characters"

        again = client.post("/agent/threads/ap-1/resume", json={"approve": True})
        assert again.status_code == 409 and "not waiting" in again.json()["detail"]
        missing = client.get("/agent/threads/nope")
        assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]
        assert client.get("/agent/threads/a%20b").status_code == 400


def test_thread_routes_are_isolated_per_key(make_agent):
    agent, _ = make_agent(script("42"))
    with served(agent, api_keys=["a", "b"]) as url, httpx.Client(base_url=url, timeout=WAIT_S) as c:
        mine = {"X-API-Key": "a", "X-Thread-Id": "t"}
        assert c.post("/agent/invoke", json={"input": {"goal": "6*7"}}, headers=mine).is_success
        assert c.get("/agent/threads/t", headers={"X-API-Key": "a"}).json()["answer"] == "42"
        assert c.get("/agent/threads/t", headers={"X-API-Key": "b"}).status_code == 404
        assert c.get("/agent/threads/t").status_code == 401
        resumed = c.post("/agent/threads/t/resume", json={}, headers={"X-API-Key": "b"})
        assert resumed.status_code == 404


def test_stream_events_reports_the_graph_nodes(make_agent):
    agent, _ = make_agent(script("42"))
    with served(agent) as url, httpx.Client(base_url=url, timeout=WAIT_S) as client:
        body = {"input": {"goal": "6*7"}, "config": {"configurable": {"thread_id": "ev-1"}}}
        with client.stream("POST", "/agent/stream_events", json=body) as response:
            assert response.status_code == 200
            text = "".join(response.iter_text())
    assert '"on_chain_start"' in text and '"on_chat_model_end"' in text
    for node in ("plan", "think", "safety_check", "act", "reflect"):
        assert f'"name": "{node}"' in text or f'"name":"{node}"' in text, node
    assert agent.result("ev-1").answer == "42"
