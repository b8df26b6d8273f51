"""Whole agent runs for ``llm_runtime.py``: ``make demo`` before/after, and precision agreement."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEMO_GOAL = "What is 12*(3+4)?"

# Goals the bundled 135M model completes in fp32; each exercises a different builtin tool.
TASKS = [
    "What is 12*(3+4)?",
    "What is 7*6?",
    "Compute 100/4",
    "What is 2+3*4?",
    "Read the file notes.txt",
    "Read the file todo.md",
    "List the files in the workspace",
    "Write hello to greeting.txt",
]
SEED_FILES = {
    "notes.txt": "Buy milk. Call Ana at 5.\n",
    "todo.md": "- finish the report\n- water the plants\n",
}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def demo_wall_times(runs: int = 2) -> list[tuple[str, list[float], str]]:
    """Time ``goalgraph run DEMO_GOAL`` as ``make demo`` runs it, in fresh processes.

    Variants: *before* (no prefix cache, no generation cache: the runtime before this work),
    *prefix cache*, *generation cache, cold* (a new cache folder each time) and *warm* (the
    folder a previous run filled). Each process loads the model (already converted).
    """
    executable = Path(sys.executable).with_name("goalgraph")
    variants = [
        ("before: no prefix cache, no generation cache", {"PREFIX_CACHE": "false"}, False),
        ("prefix cache, generation cache off", {}, False),
        ("prefix cache + generation cache, cold", {"CACHE__ENABLED": "true"}, False),
        ("prefix cache + generation cache, warm", {"CACHE__ENABLED": "true"}, True),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, model_env, warm in variants:
            times: list[float] = []
            answer = ""
            for repetition in range(runs):
                cache_dir = Path(folder) / ("warm" if warm else f"cold-{label[:6]}-{repetition}")
                env = {
                    **os.environ,
                    "GOALGRAPH_CHECKPOINT_PATH": str(Path(folder) / "checkpoints.sqlite"),
                    "GOALGRAPH_WORKSPACE": str(Path(folder) / "workspace"),
                    "GOALGRAPH_MODEL__CACHE__ENABLED": "false",
                    "GOALGRAPH_MODEL__CACHE__PATH": str(cache_dir),
                }
                env.update({f"GOALGRAPH_MODEL__{key}": value for key, value in model_env.items()})
                if warm and repetition == 0:
                    _run_demo(executable, env)  # fills the warm folder
                started = time.perf_counter()
                answer = _run_demo(executable, env)
                times.append(time.perf_counter() - started)
                _progress(f"make demo run, {label}: {times[-1]:.1f} s -> {answer}")
            rows.append((label, times, answer))
    return rows


def _run_demo(executable: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(executable), "run", DEMO_GOAL, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"goalgraph run failed: {done.stderr[-2000:]}") from None
    return f"{result['status']} {result['answer']}"


def print_demo_table(rows: list[tuple[str, list[float], str]]) -> None:
    """Print the ``make demo`` wall times with the speed-up against *before*."""
    before = statistics.median(rows[0][1])
    print(f'`make demo` agent run: `goalgraph run "{DEMO_GOAL}"` in a new process (model load')
    print("included, conversion done), median of the runs")
    print(f"{'variant':<48}{'wall s':>8}{'vs before':>11}  result")
    for label, times, answer in rows:
        median = statistics.median(times)
        print(f"{label:<48}{median:>8.1f}{before / median:>10.1f}x  {answer}")


def precision_agreement(dtypes: list[str]) -> list[dict[str, Any]]:
    """Run every task with each weights dtype; compare plans, tool calls and answers to the first.

    The generation cache is off (it would answer repeats), the prefix cache on. The first dtype
    is the reference.
    """
    from goalgraph.agent import Agent
    from goalgraph.spec import AgentSpec

    outcomes: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for dtype in dtypes:
            workspace = Path(folder) / f"workspace-{dtype}"
            workspace.mkdir()
            for name, text in SEED_FILES.items():
                (workspace / name).write_text(text, encoding="utf-8")
            spec = AgentSpec(
                model={"dtype": dtype, "cache": {"enabled": False}},
                workspace=workspace,
                checkpoint_path=Path(folder) / f"checkpoints-{dtype}.sqlite",
            )
            outcomes[dtype] = []
            with Agent(spec) as agent:
                for index, goal in enumerate(TASKS, 1):
                    started = time.perf_counter()
                    result = agent.run(goal)
                    elapsed = time.perf_counter() - started
                    outcomes[dtype].append(
                        {
                            "plan": [(s["description"], s.get("tool")) for s in result.plan],
                            "calls": [(o["tool"], o["args"]) for o in result.observations],
                            "status": result.status,
                            "answer": result.answer,
                            "seconds": elapsed,
                        }
                    )
                    _progress(
                        f"{dtype} task {index}/{len(TASKS)} {goal!r}: {result.status} "
                        f"{result.answer!r} in {elapsed:.1f} s"
                    )
    reference = outcomes[dtypes[0]]
    rows = []
    for dtype in dtypes:
        runs = outcomes[dtype]
        pairs = list(zip(runs, reference, strict=True))
        rows.append(
            {
                "dtype": dtype,
                "done": sum(run["status"] == "done" for run in runs),
                "same_plan": sum(a["plan"] == b["plan"] for a, b in pairs),
                "same_calls": sum(a["calls"] == b["calls"] for a, b in pairs),
                "same_answer": sum(a["answer"] == b["answer"] for a, b in pairs),
                "seconds": sum(run["seconds"] for run in runs),
            }
        )
    return rows


def print_agreement_table(rows: list[dict[str, Any]]) -> None:
    """Print the precision agreement on the agent task set against the first dtype."""
    total = len(TASKS)
    print(f"Agent task set ({total} goals, builtin MCP tools, greedy): each precision vs fp32")
    header = f"{'dtype':<12}{'done':>7}{'same plan':>11}{'same calls':>12}{'same answer':>13}"
    print(f"{header}{'total s':>9}{'vs fp32':>9}")
    base = rows[0]["seconds"]
    for row in rows:
        print(
            f"{row['dtype']:<12}{row['done']:>4}/{total:<2}{row['same_plan']:>8}/{total:<2}"
            f"{row['same_calls']:>9}/{total:<2}{row['same_answer']:>10}/{total:<2}"
            f"{row['seconds']:>9.1f}{base / row['seconds']:>8.2f}x"
        )
