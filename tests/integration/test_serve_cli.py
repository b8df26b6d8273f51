"""``goalgraph serve`` as a user starts it: a subprocess on a free port, keys from flag and env."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import free_port, stop_process

from goalgraph.serve import api_keys_from

CLI = Path(sys.executable).with_name("goalgraph")
STARTUP_S = 60.0


def test_api_keys_come_from_flags_and_the_environment():
    env = {"GOALGRAPH_API_KEYS": " k2, ,k3,k1 "}
    assert api_keys_from(["k1", " "], env) == ["k1", "k2", "k3"]
    assert api_keys_from(None, {}) == []


def test_serve_command_answers_health_and_checks_keys(tmp_path):
    port = free_port()
    env = {**os.environ, "GOALGRAPH_HOME": str(tmp_path), "GOALGRAPH_API_KEYS": "env-key"}
    env.pop("GOALGRAPH_CHECKPOINT_PATH", None)
    log_path = tmp_path / "serve.log"
    command = [str(CLI), "serve", "--port", str(port), "--api-key", "flag-key"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"goalgraph serve exited early:\n{log_path.read_text()}")
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"goalgraph serve did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{url}/v1/tasks").status_code == 401
        assert httpx.get(f"{url}/v1/tasks", headers={"X-API-Key": "wrong"}).status_code == 403
        for key in ("flag-key", "env-key"):
            response = httpx.get(f"{url}/v1/tasks", headers={"X-API-Key": key})
            assert response.status_code == 200 and response.json() == {"tasks": []}
    finally:
        stop_process(process)
    # uvicorn re-raises SIGTERM after a graceful shutdown, so the exit code is -15.
    assert "Application shutdown complete" in log_path.read_text()
