"""An approval asked inside a team member survives a process restart: decided in a new process,
it resumes inside the member's subgraph from the SQLite checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goalgraph.audit import AuditLog

WORKER = Path(__file__).with_name("team_worker.py")


def worker(mode: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, str(WORKER), mode], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("decision", "answer", "tool_calls"), [("approve", "saved", 2), ("deny", "not saved", 1)]
)
def test_member_approval_decided_after_a_restart(tmp_path, decision, answer, tool_calls):
    thread = f"team-{decision}"
    env = {**os.environ, "CHECKPOINT": str(tmp_path / "checkpoints.sqlite"), "THREAD": thread}
    paused = worker("run", env)
    assert paused["status"] == "awaiting_approval"
    assert paused["pending_approval"]["agent"] == "writer"
    assert paused["pending_approval"]["tool"] == "write_note"

    done = worker(decision, env)  # a new process: only the checkpoint remembers the pause
    assert done["status"] == "done", done["message"]
    assert done["answer"] == answer
    assert [run["agent"] for run in done["runs"]] == ["researcher", "writer"]
    assert done["counters"]["tool_calls"] == tool_calls
    assert done["counters"]["blocked"] == (1 if decision == "deny" else 0)
    verdicts = [
        (r["agent"], r["tool"], r["decision"], r["by"])
        for r in AuditLog(os.environ["GOALGRAPH_SAFETY__AUDIT_DIR"]).read(thread)
        if r["event"] == "verdict"
    ]
    decided = "allow" if decision == "approve" else "block"
    assert verdicts == [
        ("researcher", "calculator", "allow", "policy"),
        ("writer", "write_note", decided, "human"),
    ]
