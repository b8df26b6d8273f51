"""Each model-profile rule on and off: the task suite's success with the model's own profile, and
with one rule flipped at a time (and, with ``--switches``, one boolean ``limits`` setting flipped
through its ``GOALGRAPH_LIMITS__*`` variable).

A rule of ``goalgraph.profiles`` exists because some model fails without it; this script measures
whether it helps the model at hand. The model is loaded once; each configuration (the model's
``auto`` profile, then that profile with one rule flipped through ``model.rules``) runs every
chosen task through the suite runner (``goalgraph.eval.tasks``), in this one process, one task at
a time. Measure on the tuning split: choosing a profile's rules is tuning.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/profile_rules.py --model smollm2 --split tuning
    .venv/bin/python benchmarks/profile_rules.py --model qwen2.5-coder-0.5b --split tuning \\
        --every 4 --rules step_history,force_planned_tool
    .venv/bin/python benchmarks/profile_rules.py --model qwen2.5-coder-0.5b --split tuning \\
        --every 4 --rules feedback_last,repeat_recovery --name recovery_rules

Writes ``benchmarks/results/profile_rules_<model>.json`` (every run) and ``.md`` (the table);
``--name recovery_rules`` writes ``recovery_rules_<model>.*`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from _common import environment

from goalgraph.eval.figures import percentile, text_table
from goalgraph.eval.records import TaskRun
from goalgraph.eval.suite import SPLITS, SuiteError, TaskSpec, load_suite
from goalgraph.eval.tasks import arun_task, load_model, report_progress, select_tasks
from goalgraph.llm.loader import ModelLoadError
from goalgraph.profiles import RULES, profile_of_model, resolve_profile
from goalgraph.spec import LimitsSpec

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
RESULTS_DIR = HERE / "results"
RULES_ENV = "GOALGRAPH_MODEL__RULES"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run every configuration on the chosen tasks, print the table, write the results."""
    args = _parse(argv)
    try:
        rules = _rules(args.rules)
        switches = _switches(args.switches)
        tasks = select_tasks(
            load_suite([args.suite or TASKS_DIR]),
            task_ids=[t for t in args.tasks.split(",") if t] or None,
            split=args.split,
        )[:: args.every]
        label, factory = load_model(args.model)
    except (SuiteError, ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    profile = resolve_profile(profile_of_model(factory(tasks[0])))
    configs: list[tuple[str, dict[str, bool]]] = [("profile", {})]
    configs += [(rule, {rule: not getattr(profile, rule)}) for rule in rules]
    defaults = LimitsSpec()
    configs += [
        (f"limits.{name}", {f"limits.{name}": not getattr(defaults, name)}) for name in switches
    ]
    runs: dict[str, list[TaskRun]] = {}
    for name, flipped in configs:
        print(f"{name} {flipped or ''}: {len(tasks)} tasks", file=sys.stderr, flush=True)
        own = {rule: on for rule, on in flipped.items() if not rule.startswith("limits.")}
        with _rules_env(own), _limits_env(flipped):
            runs[name] = asyncio.run(_run_all(tasks, factory, label))
    data = _results(label, profile.name, args, tasks, configs, runs)
    print("\n".join(_table(data)))
    if not args.no_write:
        _write(args.out_dir, data)
    return data


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2", help="a model ladder name, folder or GGUF")
    parser.add_argument("--split", default="tuning", help=f"{', '.join(SPLITS)} or all")
    parser.add_argument("--tasks", default="", help="comma-separated task ids (default: all)")
    parser.add_argument("--every", type=int, default=1, help="take every n-th chosen task")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rules to flip")
    parser.add_argument(
        "--switches", default="", help="comma-separated boolean limits settings to flip"
    )
    parser.add_argument("--name", default="profile_rules", help="the results files' prefix")
    parser.add_argument("--suite", type=Path, help="suite file or folder")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where to write")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    return parser.parse_args(argv)


def _rules(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are {', '.join(RULES)}")
    return names


def _switches(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [n for n, f in LimitsSpec.model_fields.items() if f.annotation in (bool, "bool")]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown switch(es) {', '.join(unknown)}; switches are {known}")
    return names


@contextlib.contextmanager
def _limits_env(flipped: Mapping[str, bool]) -> Iterator[None]:
    """Set the flipped ``limits.*`` switches through their ``GOALGRAPH_LIMITS__*`` variables."""
    names = {
        f"GOALGRAPH_LIMITS__{key.removeprefix('limits.').upper()}": str(on).lower()
        for key, on in flipped.items()
        if key.startswith("limits.")
    }
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _rules_env(rules: Mapping[str, bool]) -> Iterator[None]:
    """Set ``model.rules`` for the agent specs built inside (the task runner builds one per run)."""
    before = os.environ.get(RULES_ENV)
    os.environ[RULES_ENV] = json.dumps(dict(rules))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RULES_ENV, None)
        else:
            os.environ[RULES_ENV] = before


async def _run_all(tasks: Sequence[TaskSpec], factory: Any, label: str) -> list[TaskRun]:
    runs = []
    for done, task in enumerate(tasks, 1):
        run = await arun_task(task, factory(task), label)
        runs.append(run)
        report_progress(done, len(tasks), run)
    return runs


def _row(name: str, flipped: Mapping[str, bool], runs: Sequence[TaskRun]) -> dict[str, Any]:
    return {
        "config": name,
        "rules": dict(flipped),
        "tasks": len(runs),
        "succeeded": sum(run.success for run in runs),
        "success_rate": sum(run.success for run in runs) / len(runs),
        "mean_tool_calls": statistics.fmean(len(run.calls) for run in runs),
        "wall_p50_s": percentile([run.wall_s for run in runs], 50),
        "succeeded_ids": sorted(run.task_id for run in runs if run.success),
    }


def _results(
    label: str,
    profile: str,
    args: argparse.Namespace,
    tasks: Sequence[TaskSpec],
    configs: Sequence[tuple[str, dict[str, bool]]],
    runs: Mapping[str, list[TaskRun]],
) -> dict[str, Any]:
    return {
        "benchmark": "profile_rules",
        "name": args.name,
        "date": time.strftime("%Y-%m-%d"),
        "model": label,
        "profile": profile,
        "split": args.split,
        "command": "python benchmarks/profile_rules.py " + " ".join(sys.argv[1:]),
        "environment": environment(("goalgraph", "torch", "transformers", "xgrammar")),
        "tasks": [task.id for task in tasks],
        "rows": [_row(name, flipped, runs[name]) for name, flipped in configs],
        "runs": {name: [run.to_dict() for run in runs[name]] for name, _ in configs},
    }


def _table(data: Mapping[str, Any]) -> list[str]:
    base = data["rows"][0]
    header = ["configuration", "success", "vs profile", "tool calls", "wall p50 s"]
    rows = []
    for row in data["rows"]:
        change = ", ".join(f"{'+' if on else '-'}{rule}" for rule, on in row["rules"].items())
        delta = row["succeeded"] - base["succeeded"]
        rows.append(
            [
                f"{data['profile']} {change}".strip(),
                f"{row['succeeded']}/{row['tasks']}",
                "" if not change else f"{delta:+d}",
                f"{row['mean_tool_calls']:.1f}",
                f"{row['wall_p50_s']:.1f}",
            ]
        )
    title = f"Profile rules on {data['model']} ({data['split']} split, {len(data['tasks'])} tasks)"
    return [title, "", *text_table(header, rows, left={0})]


def _write(out_dir: Path, data: Mapping[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Not Path.with_suffix: a model name such as "qwen2.5-coder-0.5b" has a dot of its own.
    stem = f"{data['name']}_{Path(data['model']).name}"
    (out_dir / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
    lines = _table(data)
    md = [f"# {lines[0]}", "", f"Reproduce: `{data['command']}`", "", "```", *lines[2:], "```"]
    (out_dir / f"{stem}.md").write_text("\n".join(md) + "\n")
    print(f"wrote {out_dir / stem}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
