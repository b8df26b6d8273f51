"""The ``goalgraph`` command as a user runs it: exit codes, JSON output, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(sys.executable).with_name("goalgraph")


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOALGRAPH_HOME": str(home)}
    env.pop("GOALGRAPH_CHECKPOINT_PATH", None)
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120, env=env)


def test_empty_goal_fails_with_json_and_no_traceback(tmp_path):
    done = run_cli("run", "   ", "--json", home=tmp_path)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "failed" and "goal is empty" in result["message"]
    assert "Traceback" not in done.stderr
    # The run is checkpointed: its history is there to inspect.
    history = run_cli("history", result["thread_id"], "--json", home=tmp_path)
    assert history.returncode == 0 and json.loads(history.stdout)[0]["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("history", "no-such-thread"), "no run with thread id"),
        (("resume", "no-such-thread"), "no run with thread id"),
        (("run", "x", "--max-steps", "0"), "limits.max_steps"),
    ],
)
def test_usage_errors_are_one_clear_line(tmp_path, args, message):
    done = run_cli(*args, home=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_spec_file(tmp_path):
    spec = tmp_path / "agent.yaml"
    spec.write_text("limits: {max_steps: -1}\nbogus: 1\n")
    done = run_cli("run", "x", "--spec", str(spec), home=tmp_path)
    assert done.returncode == 2
    assert "limits.max_steps" in done.stderr and "bogus" in done.stderr


def test_corrupt_checkpoint_file(tmp_path):
    (tmp_path / "checkpoints.sqlite").write_bytes(b"garbage" * 1000)
    done = run_cli("history", "t", home=tmp_path)
    assert done.returncode == 2
    assert "unreadable" in done.stderr and "Traceback" not in done.stderr
