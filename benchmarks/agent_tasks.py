"""The agent task suite: success rate, steps, tool-call validity and wall time, per kind of task.

Every task of ``benchmarks/tasks/*.yaml`` runs through the real agent (graph, goalgraph's MCP
server, safety layer) in a fresh temporary workspace, and a deterministic check decides success
(``goalgraph/eval/``). Two models by default:

* ``scripted``: each task's ideal trajectory replayed, which checks the harness, the checks and the
  graph end to end (every task must pass); its wall time is the framework's own cost;
* ``bundled``: SmolLM2-135M-Instruct, greedy, generation cache off.

Any local model folder or GGUF file works too (``--model path/to/model``). Failed runs are
counted by failure cause, derived from the recorded trajectory by fixed rules. Success is also
reported per split: ``tuning`` (the tasks the agent was tuned on) and ``heldout`` (kept for
measuring it); ``--split heldout`` runs only those.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/agent_tasks.py            # both models, ~15-35 min on 2 cores
    GOALGRAPH_MODEL__THREADS=1 .venv/bin/python benchmarks/agent_tasks.py   # on a busy machine
    .venv/bin/python benchmarks/agent_tasks.py --quick    # a few tasks, scripted: a smoke test
    .venv/bin/python benchmarks/agent_tasks.py --split heldout --model bundled

Writes ``benchmarks/results/agent_tasks.json`` (every run's trajectory), ``agent_tasks.md`` (the
tables) and ``agent_tasks.png`` (the plot); ``--quick`` writes only with ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _common import environment

from goalgraph.eval.checks import FAILURE_CAUSES
from goalgraph.eval.suite import TaskSpec, load_suite
from goalgraph.eval.tasks import (
    EVAL_LIMITS,
    SuiteResult,
    report_progress,
    run_suite,
    select_tasks,
    summary_table,
)

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
RESULTS_DIR = HERE / "results"
QUICK_TASKS = [
    "arith-product",
    "files-read",
    "multi-compute-then-write",
    "approval-granted-write",
    "refuse-read-passwd",
    "team-pipe-read-compute-write",
]
"""One task of each main shape (a team's too), for ``--quick``."""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the suite for each model, print the tables, write the results; return them."""
    args = _parse(argv)
    tasks = select_tasks(load_suite(args.suite or [TASKS_DIR]), split=args.split)
    if args.quick:
        tasks = [task for task in tasks if task.id in QUICK_TASKS] or tasks[:5]
    models = args.model or (["scripted"] if args.quick else ["scripted", "bundled"])
    results = [_run(tasks, model, progress=not args.no_progress) for model in models]
    data = _results_data(tasks, results)
    for result in results:
        print("\n".join(summary_table(result)), end="\n\n")
    out_dir = args.out_dir or (None if args.quick else RESULTS_DIR)
    if out_dir is not None:
        _write(out_dir, data, results)
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    return data


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="scripted, bundled, or a model folder / GGUF file (repeatable; "
        "default: scripted and bundled)",
    )
    parser.add_argument("--suite", action="append", type=Path, help="suite file or folder")
    parser.add_argument(
        "--split",
        choices=["tuning", "heldout", "all"],
        default="all",
        help="run only the tuning or the heldout tasks (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a few tasks, scripted model")
    parser.add_argument("--out-dir", type=Path, help="where to write the results")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no per-task lines on stderr")
    return parser.parse_args(argv)


def _run(tasks: list[TaskSpec], model: str, *, progress: bool) -> SuiteResult:
    print(f"{model}: {len(tasks)} tasks", file=sys.stderr, flush=True)

    return run_suite(tasks, model, progress=report_progress if progress else None)


def _results_data(tasks: list[TaskSpec], results: list[SuiteResult]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    splits: dict[str, int] = {}
    for task in tasks:
        kinds[task.kind] = kinds.get(task.kind, 0) + 1
        splits[task.split] = splits.get(task.split, 0) + 1
    return {
        "benchmark": "agent_tasks",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "environment": environment(["torch", "transformers", "xgrammar", "langgraph", "mcp"]),
        "tasks": len(tasks),
        "tasks_per_kind": kinds,
        "tasks_per_split": splits,
        "limits": EVAL_LIMITS,
        "model_env": {k: v for k, v in os.environ.items() if k.startswith("GOALGRAPH_MODEL__")},
        "failure_cause_meanings": FAILURE_CAUSES,
        "models": [result.to_dict() for result in results],
    }


def _write(out_dir: Path, data: dict[str, Any], results: list[SuiteResult]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "agent_tasks.json").write_text(
        json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    (out_dir / "agent_tasks.md").write_text(markdown(data), encoding="utf-8")
    _plot(out_dir / "agent_tasks.png", results)
    print(f"wrote {out_dir}/agent_tasks.json, .md and .png", file=sys.stderr)


def markdown(data: dict[str, Any]) -> str:
    """Return the results as Markdown: one table per model, failure causes, the failed tasks."""
    lines = [
        f"Agent task suite: {data['tasks']} tasks "
        f"({', '.join(f'{kind} {n}' for kind, n in data['tasks_per_kind'].items())}); "
        f"limits {data['limits']['max_steps']} think steps and "
        f"{data['limits']['max_seconds']:g} s of work per task; measured {data['date']} on "
        f"{data['environment']['cpus']} CPUs (shared, noisy).",
        "",
    ]
    for model in data["models"]:
        lines += [f"**{model['model']}** (whole suite {model['wall_s']:.0f} s)", ""]
        lines += _markdown_summary(model["summary"])
        if model.get("splits"):
            lines += ["", "| split | tasks | success |", "|---|---|---|"]
            lines += [
                f"| {row['split']} | {row['tasks']} | {row['succeeded']}/{row['tasks']} "
                f"({row['success_rate']:.0%}) |"
                for row in model["splits"]
            ]
        if model["failure_causes"]:
            lines += ["", "| failure cause | runs | meaning |", "|---|---|---|"]
            lines += [
                f"| {cause} | {count} | {FAILURE_CAUSES[cause]} |"
                for cause, count in model["failure_causes"].items()
            ]
            failed = [
                f"{run['task_id']} ({run['failure_cause']})"
                for run in model["runs"]
                if not run["success"]
            ]
            lines += ["", "Failed: " + ", ".join(failed)]
        lines.append("")
    settings = "".join(f"{key}={value} " for key, value in data.get("model_env", {}).items())
    lines.append(f"`{settings}.venv/bin/python benchmarks/agent_tasks.py`")
    return "\n".join(lines) + "\n"


def _markdown_summary(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| kind | tasks | success | mean think steps | valid tool calls | wall p50 | wall p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        validity = (
            "-"
            if row["validity"] is None
            else f"{row['calls_valid']}/{row['calls_total']} ({row['validity']:.0%})"
        )
        name = f"**{row['kind']}**" if row["kind"] == "overall" else row["kind"]
        lines.append(
            f"| {name} | {row['tasks']} | {row['succeeded']}/{row['tasks']} "
            f"({row['success_rate']:.0%}) | {row['mean_think_steps']:.1f} | {validity} | "
            f"{row['wall_p50_s']:.1f} s | {row['wall_p95_s']:.1f} s |"
        )
    return lines


def _plot(path: Path, results: list[SuiteResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[3, 2])
    kinds = list(dict.fromkeys(run.kind for result in results for run in result.runs))
    width = 0.8 / max(1, len(results))
    for index, result in enumerate(results):
        rates = []
        for kind in kinds:
            runs = [run for run in result.runs if run.kind == kind]
            rates.append(100 * sum(run.success for run in runs) / len(runs) if runs else 0)
        positions = [k + index * width - 0.4 + width / 2 for k in range(len(kinds))]
        left.bar(positions, rates, width, label=result.model)
    left.set_xticks(range(len(kinds)), kinds, rotation=30, ha="right")
    left.set_ylabel("tasks succeeded (%)")
    left.set_ylim(0, 105)
    left.set_title("Success rate per kind of task")
    left.legend(loc="lower left")
    causes = list(FAILURE_CAUSES)
    height = 0.8 / max(1, len(results))
    for index, result in enumerate(results):
        counts = result.failure_counts()
        positions = [c + index * height - 0.4 + height / 2 for c in range(len(causes))]
        values = [counts.get(cause, 0) for cause in causes]
        right.barh(positions, values, height, label=result.model)
    right.set_yticks(range(len(causes)), causes)
    right.invert_yaxis()
    right.set_xlabel("failed runs")
    right.set_xlim(left=0, right=max(1, right.get_xlim()[1]))
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title("Failure causes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
