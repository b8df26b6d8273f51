"""A run killed with SIGKILL resumes from its SQLite checkpoint with no step lost or repeated."""

from __future__ import annotations

import os

from helpers import kill_mid_run_then_resume, recorded_steps


def test_sigkill_mid_run_then_resume(tmp_path):
    record = tmp_path / "record.txt"
    env = {
        **os.environ,
        "RECORD_FILE": str(record),
        "CHECKPOINT": str(tmp_path / "checkpoints.sqlite"),
        "THREAD": "crash-1",
    }
    result = kill_mid_run_then_resume(env, record)
    assert result["status"] == "done", result
    assert recorded_steps(record) == ["step-1", "step-2", "step-3"]
    assert [s["status"] for s in result["plan"]] == ["done"] * 3
    assert result["counters"]["tool_calls"] == 3
