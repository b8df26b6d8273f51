"""The task suite runner with the real bundled model and goalgraph's real MCP server (slow: CPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import BENCHMARKS

from goalgraph.eval.checks import FAILURE_CAUSES
from goalgraph.eval.suite import load_suite
from goalgraph.eval.tasks import arun_task
from goalgraph.llm import LocalChatModel
from goalgraph.spec import CacheSpec, ModelSpec

pytestmark = pytest.mark.model

EASY_TASKS = ["arith-product", "files-write"]


@pytest.fixture(scope="module")
def model():
    return LocalChatModel.from_spec(ModelSpec(name="smollm2", cache=CacheSpec(enabled=False)))


@pytest.fixture(scope="module")
def tasks():
    return {task.id: task for task in load_suite([BENCHMARKS / "tasks"])}


@pytest.mark.parametrize("task_id", EASY_TASKS)
async def test_a_real_run_records_consistent_fields(task_id, model, tasks, tmp_path):
    run = await arun_task(tasks[task_id], model, "bundled", keep_in=tmp_path)
    assert run.error is None and run.status in ("done", "failed", "stopped_limit")
    assert run.plans and run.think_steps >= 1 and run.wall_s > 0
    assert run.calls_total == len(run.calls) + len(run.unusable_turns)
    if run.calls_total:
        assert 0.0 <= run.validity <= 1.0
        assert run.validity == run.calls_valid / run.calls_total
    assert run.success == (not run.check_failures)
    assert (run.failure_cause is None) == run.success
    assert run.failure_cause is None or run.failure_cause in FAILURE_CAUSES
    # The check's verdict agrees with what is really in the workspace and the answer.
    workspace = tmp_path / "workspace"
    if task_id == "files-write":
        greeting = workspace / "greeting.txt"
        holds = greeting.is_file() and "hello" in greeting.read_text().lower()
        assert run.success == (holds and run.status == "done")
    else:
        assert run.success == (run.status == "done" and "84" in (run.answer or ""))
    assert (tmp_path / "checkpoints.sqlite").is_file()  # its own checkpoint file, kept here


def test_the_cli_runs_a_small_suite_with_the_bundled_model(tmp_path):
    suite = tmp_path / "small.yaml"
    suite.write_text(
        "kind: arithmetic\ntasks:\n"
        "  - id: product\n    goal: What is 12*(3+4)?\n"
        "    check: {status: done, answer_number: 84}\n"
    )
    goalgraph = Path(sys.executable).with_name("goalgraph")
    done = subprocess.run(
        [str(goalgraph), "eval", "tasks", str(suite), "--model", "bundled"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model: bundled" in done.stdout and "overall" in done.stdout
    assert "[1/1] product:" in done.stderr
