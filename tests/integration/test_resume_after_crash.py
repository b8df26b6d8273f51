"""A run killed with SIGKILL resumes from its SQLite checkpoint with no step lost or repeated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKER = Path(__file__).with_name("resume_worker.py")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_mid_run_then_resume(tmp_path):
    record = tmp_path / "record.txt"
    env = {
        **os.environ,
        "RECORD_FILE": str(record),
        "CHECKPOINT": str(tmp_path / "checkpoints.sqlite"),
        "THREAD": "crash-1",
    }
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(_lines(record)) < 1:
        assert worker.poll() is None, worker.stderr.read().decode()
        assert time.monotonic() < deadline, "the worker never finished step 1"
        time.sleep(0.02)
    time.sleep(0.15)  # Now inside think's scripted 0.4 s for step 2: no tool call in flight.
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert _lines(record) == ["step-1"]

    resumed = subprocess.run(
        [sys.executable, str(WORKER), "resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "done", result
    assert _lines(record) == ["step-1", "step-2", "step-3"]
    assert [s["status"] for s in result["plan"]] == ["done"] * 3
    assert result["counters"]["tool_calls"] == 3
