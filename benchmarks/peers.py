"""goalgraph against peer agent frameworks: the same model, MCP tools, limits and task checks.

Every agent runs every chosen task of ``benchmarks/tasks/*.yaml`` one after another, in this one
process, on the same local model (``goalgraph.eval.peers`` says how each peer gets goalgraph's
tools, safety policy, limits and checks):

* ``goalgraph``: the agent itself, through the task-suite runner (``goalgraph.eval.tasks``);
* ``langgraph``: LangGraph's prebuilt ReAct agent over goalgraph's ``LocalChatModel`` (the same
  grammar-constrained model layer, without goalgraph's graph);
* ``smolagents``: smolagents' ``ToolCallingAgent`` over its ``TransformersModel`` on the same model
  folder (the model's own chat template and tool format, no grammar).

The table gives, per agent and split: success, mean tool calls and model turns per task, tool-call
validity (valid calls over proposed calls plus unusable turns, as ``goalgraph.eval.records``
defines it), wall time p50/p95, and the p95 of successful and of failed runs apart.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/peers.py --model smollm2
    .venv/bin/python benchmarks/peers.py --model qwen2.5-coder-0.5b --split heldout
    .venv/bin/python benchmarks/peers.py --model smollm2 --agents langgraph,smolagents \\
        --tasks arith-product,files-read --out-dir /tmp/peers

Agents run in separate processes (side by side, one per core) each write their own results; join
them into one table with ``--merge``::

    .venv/bin/python benchmarks/peers.py --merge /tmp/gg/peers_qwen2.5-coder-0.5b.json \
        /tmp/lg/peers_qwen2.5-coder-0.5b.json

Writes ``benchmarks/results/peers_<model>.json`` (every run's trajectory) and ``.md`` (the table).
The smolagents peer loads a second copy of the weights (about 0.5 GB for smollm2, 2.8 / 7 GB for
the Qwen 0.5B / 1.5B models in float32).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import environment

from goalgraph.eval.checks import FAILURE_CAUSES
from goalgraph.eval.figures import percentile, text_table
from goalgraph.eval.peers import (
    PEER_AGENTS,
    LangGraphPeer,
    PeerAgent,
    SmolagentsPeer,
    arun_peer_task,
    react_agent_name,
    single_agent_tasks,
    smolagents_model,
)
from goalgraph.eval.records import CallRecord, TaskRun
from goalgraph.eval.suite import SPLITS, SuiteError, TaskSpec, load_suite
from goalgraph.eval.tasks import EVAL_LIMITS, arun_task, load_model, report_progress, select_tasks
from goalgraph.llm.loader import ModelLoadError

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
RESULTS_DIR = HERE / "results"
AGENTS = ("goalgraph", *PEER_AGENTS)
"""Every agent the script can run, in the order it runs them."""

RunTask = Callable[[TaskSpec], Any]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run each agent on the chosen tasks (or join earlier results, with ``--merge``), print
    the table, write the results; return them."""
    args = _parse(argv)
    data = _merged(args.merge) if args.merge else _measured(args)
    print("\n".join(table_lines(data)))
    if not args.no_write:
        write(args.out_dir or RESULTS_DIR, data)
    return data


def _measured(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen agents on the chosen tasks; exit with a message on bad input."""
    try:
        agents = parse_agents(args.agents)
        tasks = select_tasks(
            load_suite(args.suite or [TASKS_DIR]),
            task_ids=_names(args.tasks) or None,
            split=args.split,
        )
        if set(agents) - {"goalgraph"}:  # Peers are single agents: every agent runs the same.
            tasks = single_agent_tasks(tasks)
        runs = run_agents(args.model, agents, tasks, progress=not args.no_progress)
    except (SuiteError, ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return results_data(args.model, tasks, runs, selection=selection_args(args))


def selection_args(args: argparse.Namespace) -> list[str]:
    """Return the command-line arguments that chose the run's tasks, to print beside its table."""
    task_ids = _names(args.tasks)
    chosen = [f"--split {args.split}"] if args.split != "all" else []
    chosen += [f"--tasks {','.join(task_ids)}"] if task_ids else []
    return chosen + [f"--suite {path}" for path in args.suite or []]


def _merged(paths: Sequence[Path]) -> dict[str, Any]:
    """Join the results files at ``paths``; exit with a message if they cannot be joined."""
    try:
        return merge_results([json.loads(path.read_text("utf-8")) for path in paths])
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot merge: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default="smollm2",
        help="a model ladder name (smollm2, qwen2.5-coder-0.5b...), a model folder or a GGUF file",
    )
    parser.add_argument(
        "--agents",
        default=",".join(AGENTS),
        help=f"comma-separated agents to run, of {', '.join(AGENTS)} (default: all)",
    )
    parser.add_argument("--split", default="all", help=f"{', '.join(SPLITS)} or all (default: all)")
    parser.add_argument("--tasks", default="", help="comma-separated task ids (default: all)")
    parser.add_argument("--suite", action="append", type=Path, help="suite file or folder")
    parser.add_argument("--out-dir", type=Path, help=f"where to write (default: {RESULTS_DIR})")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="instead of running, join results of other agents on the same model and tasks",
    )
    parser.add_argument("--no-progress", action="store_true", help="no per-task lines on stderr")
    return parser.parse_args(argv)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_agents(text: str) -> list[str]:
    """Return the agents named in a comma-separated list, in the script's order.

    Raises:
        ValueError: If a name is unknown or none is given.
    """
    names = _names(text)
    unknown = [name for name in names if name not in AGENTS]
    if unknown:
        raise ValueError(f"unknown agent(s) {', '.join(unknown)}; choose from {', '.join(AGENTS)}")
    if not names:
        raise ValueError(f"no agent given; choose from {', '.join(AGENTS)}")
    return [agent for agent in AGENTS if agent in names]


def run_agents(
    model: str, agents: Sequence[str], tasks: Sequence[TaskSpec], *, progress: bool = True
) -> dict[str, list[TaskRun]]:
    """Run every agent on every task, one run at a time; return the records by agent.

    The model is loaded once (goalgraph's loader, generation cache off) and shared by goalgraph
    and the LangGraph peer; smolagents loads its own copy from the same folder.

    Raises:
        ModelLoadError: If the model cannot be loaded.
        ValueError: If ``model`` is ``scripted`` and a peer is asked for (peers need a real model).
    """
    if model == "scripted" and set(agents) - {"goalgraph"}:
        raise ValueError("the scripted model replays goalgraph's scripts; peers need a real model")
    label, factory = load_model("smollm2" if model == "bundled" else model)
    runs: dict[str, list[TaskRun]] = {}
    for agent in agents:
        if progress:
            print(f"{agent}: {len(tasks)} tasks on {label}", file=sys.stderr, flush=True)
        run_task = _task_runner(agent, label, factory, tasks)
        runs[agent] = asyncio.run(_run_all(tasks, run_task, progress=progress))
    return runs


def _task_runner(
    agent: str, label: str, factory: Callable[[TaskSpec], Any], tasks: Sequence[TaskSpec]
) -> RunTask:
    if agent == "goalgraph":
        return lambda task: arun_task(task, factory(task), label)
    chat = factory(tasks[0])
    peer: PeerAgent = (
        LangGraphPeer(chat) if agent == "langgraph" else SmolagentsPeer(smolagents_model(chat))
    )
    return lambda task: arun_peer_task(task, peer, label)


async def _run_all(
    tasks: Sequence[TaskSpec], run_task: RunTask, *, progress: bool
) -> list[TaskRun]:
    runs = []
    for done, task in enumerate(tasks, 1):
        run = await run_task(task)
        runs.append(run)
        if progress:
            report_progress(done, len(tasks), run)
    return runs


def summary_row(agent: str, split: str, runs: Sequence[TaskRun]) -> dict[str, Any]:
    """Return one row of the table: success, steps, validity and wall-time percentiles."""
    calls_total = sum(run.calls_total for run in runs)
    calls_valid = sum(run.calls_valid for run in runs)
    succeeded = [run.wall_s for run in runs if run.success]
    failed = [run.wall_s for run in runs if not run.success]
    return {
        "agent": agent,
        "split": split,
        "tasks": len(runs),
        "succeeded": len(succeeded),
        "success_rate": len(succeeded) / len(runs),
        "mean_tool_calls": statistics.fmean(len(run.calls) for run in runs),
        "mean_model_turns": statistics.fmean(run.think_steps for run in runs),
        "calls_total": calls_total,
        "calls_valid": calls_valid,
        "validity": calls_valid / calls_total if calls_total else None,
        "wall_p50_s": percentile([run.wall_s for run in runs], 50),
        "wall_p95_s": percentile([run.wall_s for run in runs], 95),
        "wall_p95_success_s": percentile(succeeded, 95),
        "wall_p95_failed_s": percentile(failed, 95),
    }


def summary_rows(runs: dict[str, list[TaskRun]]) -> list[dict[str, Any]]:
    """Return, per agent, a row per split that has runs and an ``all`` row."""
    rows = []
    for agent, records in runs.items():
        if not records:
            continue
        splits = [split for split in SPLITS if any(run.split == split for run in records)]
        for split in splits if len(splits) > 1 else []:
            rows.append(summary_row(agent, split, [run for run in records if run.split == split]))
        rows.append(summary_row(agent, "all", records))
    return rows


def results_data(
    model: str,
    tasks: Sequence[TaskSpec],
    runs: dict[str, list[TaskRun]],
    *,
    selection: Sequence[str] = (),
) -> dict:
    """Return everything the run measured, JSON-serialisable; ``selection`` holds the
    arguments that chose the tasks (``selection_args``), so the results say how to rerun them."""
    return {
        "benchmark": "peers",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": model,
        "environment": environment(
            ["torch", "transformers", "langgraph", "langgraph-prebuilt", "smolagents", "mcp"]
        ),
        "react_agent": react_agent_name(),
        "model_env": {k: v for k, v in os.environ.items() if k.startswith("GOALGRAPH_MODEL__")},
        "limits": EVAL_LIMITS,
        "tasks": [task.id for task in tasks],
        "team_tasks": [task.id for task in tasks if task.is_team()],
        "selection": list(selection),
        "summary": summary_rows(runs),
        "failure_causes": {
            agent: _failure_counts(records) for agent, records in runs.items() if records
        },
        "failure_cause_meanings": FAILURE_CAUSES,
        "runs": {agent: [run.to_dict() for run in records] for agent, records in runs.items()},
    }


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Join results (``results_data``) of different agents on the same model, tasks, limits and
    model settings, measured in separate processes, into one. Results of the same agents on
    disjoint tasks (a suite split over processes) are joined task by task instead.

    A goalgraph-only process also runs the team tasks, which a peer (one agent) cannot run; when
    one result holds more tasks than another and every extra task is a team task, those are left
    out of it, so every agent is compared on the same tasks (``left_out`` names them).

    The tasks may come in another order, or be chosen by other arguments (``--split heldout``
    on one side, shards joined by ``--tasks`` on the other): each agent's runs follow the first
    result's order, and the merged result names its tasks with ``--tasks``.

    Raises:
        ValueError: No results, results that differ in any of those, or an agent in two of them.
    """
    if not parts:
        raise ValueError("no results to merge")
    if _are_shards(parts):
        return _joined_shards(parts)
    parts = _without_team_tasks(parts)
    first = parts[0]
    for part in parts[1:]:
        for key in ("model", "limits", "model_env"):
            if part.get(key) != first.get(key):
                raise ValueError(f"the results differ in {key}: {part.get(key)!r}")
        if set(part.get("tasks", [])) != set(first.get("tasks", [])):
            raise ValueError(f"the results differ in tasks: {part.get('tasks')!r}")
    agents = [agent for part in parts for agent in part["runs"]]
    repeated = sorted({agent for agent in agents if agents.count(agent) > 1})
    if repeated:
        raise ValueError(f"agent(s) in more than one result: {', '.join(repeated)}")
    order = {task: index for index, task in enumerate(first.get("tasks", []))}
    same_selection = all(part.get("selection") == first.get("selection") for part in parts)
    return {
        **first,
        "date": " and ".join(dict.fromkeys(part["date"] for part in parts)),
        # The same tasks chosen differently (a --split run, and shards joined by --tasks) are
        # rerun by naming them.
        "selection": first.get("selection", [])
        if same_selection
        else [f"--tasks {','.join(first.get('tasks', []))}"],
        "summary": [row for part in parts for row in part["summary"]],
        "failure_causes": {a: n for part in parts for a, n in part["failure_causes"].items()},
        "runs": {
            agent: sorted(runs, key=lambda run: order.get(run["task_id"], len(order)))
            for part in parts
            for agent, runs in part["runs"].items()
        },
        "processes": sum(part.get("processes", 1) for part in parts),
        "left_out": {a: ids for part in parts for a, ids in part.get("left_out", {}).items()},
    }


def _are_shards(parts: Sequence[dict[str, Any]]) -> bool:
    """Tell whether ``parts`` hold the same agents on pairwise disjoint tasks, with the same
    model, limits and model settings: one measurement split over processes."""
    first = parts[0]
    if len(parts) < 2 or any(set(p["runs"]) != set(first["runs"]) for p in parts[1:]):
        return False
    if any(p.get(key) != first.get(key) for p in parts for key in ("model", "limits", "model_env")):
        return False
    tasks = [task for part in parts for task in part.get("tasks", [])]
    return len(tasks) == len(set(tasks))


def _joined_shards(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Join ``parts`` that ``_are_shards``: every task, and each agent's runs, in part order,
    with the summary and failure causes counted again over all of them."""
    tasks = [task for part in parts for task in part.get("tasks", [])]
    runs = {
        agent: [_task_run(r) for part in parts for r in part["runs"][agent]]
        for agent in parts[0]["runs"]
    }
    return {
        **parts[0],
        "date": " and ".join(dict.fromkeys(part["date"] for part in parts)),
        "tasks": tasks,
        "team_tasks": [task for part in parts for task in part.get("team_tasks", [])],
        "selection": [f"--tasks {','.join(tasks)}"],
        "summary": summary_rows(runs),
        "failure_causes": {agent: _failure_counts(records) for agent, records in runs.items()},
        "runs": {agent: [r for part in parts for r in part["runs"][agent]] for agent in runs},
        "processes": sum(part.get("processes", 1) for part in parts),
        "shards": [part.get("tasks", []) for part in parts],
    }


def _without_team_tasks(parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``parts``, each restricted to the tasks common to all when every task some part
    holds beyond them is a team task, with its summary counted again; else ``parts``."""
    common = set.intersection(*(set(part.get("tasks", [])) for part in parts))
    trimmed = []
    for part in parts:
        extra = [task for task in part.get("tasks", []) if task not in common]
        if not extra or not set(extra) <= set(_team_tasks(part)):
            trimmed.append(part)
            continue
        kept = {
            agent: [_task_run(run) for run in runs if run["task_id"] not in extra]
            for agent, runs in part["runs"].items()
        }
        trimmed.append(
            {
                **part,
                "tasks": [task for task in part["tasks"] if task in common],
                "summary": summary_rows(kept),
                "failure_causes": {agent: _failure_counts(rs) for agent, rs in kept.items() if rs},
                "runs": {agent: [run.to_dict() for run in rs] for agent, rs in kept.items()},
                "left_out": {**part.get("left_out", {}), **{agent: extra for agent in kept}},
            }
        )
    return trimmed


def _team_tasks(part: dict[str, Any]) -> list[str]:
    """The team tasks of a result: as ``results_data`` records them (``TaskSpec.is_team``), or,
    in a result written before it did, those whose runs have a ``team_*`` kind."""
    if "team_tasks" in part:
        return list(part["team_tasks"])
    kinds = {run["task_id"]: run["kind"] for runs in part["runs"].values() for run in runs}
    return [task for task, kind in kinds.items() if kind.startswith("team")]


def _task_run(data: dict[str, Any]) -> TaskRun:
    """Read back a ``TaskRun.to_dict()`` record."""
    names = {field.name for field in dataclasses.fields(TaskRun)}
    run = TaskRun(**{key: value for key, value in data.items() if key in names and key != "calls"})
    call_names = {field.name for field in dataclasses.fields(CallRecord)}
    run.calls = [
        CallRecord(**{key: value for key, value in call.items() if key in call_names})
        for call in data.get("calls", [])
    ]
    return run


def _failure_counts(runs: Sequence[TaskRun]) -> dict[str, int]:
    counts = {cause: 0 for cause in FAILURE_CAUSES}
    for run in runs:
        if run.failure_cause:
            counts[run.failure_cause] += 1
    return {cause: n for cause, n in counts.items() if n}


def _seconds(value: float) -> str:
    return "-" if value != value else f"{value:.1f} s"  # NaN: no run of that kind


def _row_cells(row: dict[str, Any]) -> list[str]:
    validity = (
        "-"
        if row["validity"] is None
        else f"{row['calls_valid']}/{row['calls_total']} ({row['validity']:.0%})"
    )
    return [
        row["agent"],
        row["split"],
        f"{row['succeeded']}/{row['tasks']} ({row['success_rate']:.0%})",
        f"{row['mean_tool_calls']:.1f}",
        f"{row['mean_model_turns']:.1f}",
        validity,
        _seconds(row["wall_p50_s"]),
        _seconds(row["wall_p95_s"]),
        _seconds(row["wall_p95_success_s"]),
        _seconds(row["wall_p95_failed_s"]),
    ]


HEADER = [
    "agent",
    "split",
    "success",
    "tool calls",
    "model turns",
    "valid calls",
    "wall p50",
    "wall p95",
    "p95 ok",
    "p95 failed",
]


def table_lines(data: dict[str, Any]) -> list[str]:
    """Return the table and the failure causes as plain-text lines."""
    body = [_row_cells(row) for row in data["summary"]]
    lines = [
        f"model: {data['model']}, {len(data['tasks'])} tasks, limits {data['limits']['max_steps']} "
        f"model turns / {data['limits']['max_seconds']:g} s per task",
        *text_table(HEADER, body, left={0, 1}),
    ]
    for agent, counts in data["failure_causes"].items():
        if counts:
            causes = ", ".join(f"{cause} {n}" for cause, n in counts.items())
            lines.append(f"{agent} failures: {causes}")
    return lines


def markdown(data: dict[str, Any]) -> str:
    """Return the results as Markdown: the table, failure causes and the failed tasks."""
    lines = [
        f"Peer agents on **{data['model']}**: {len(data['tasks'])} tasks, the same MCP tools, "
        f"safety policy, limits ({data['limits']['max_steps']} model turns, "
        f"{data['limits']['max_seconds']:g} s per task) and checks; LangGraph peer: "
        f"`{data['react_agent']}`; measured {data['date']} on {data['environment']['cpus']} CPUs "
        "(shared, noisy).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_row_cells(row)) + " |" for row in data["summary"]]
    lines.append("")
    for agent, counts in data["failure_causes"].items():
        failed = [
            f"{run['task_id']} ({run['failure_cause']})"
            for run in data["runs"][agent]
            if not run["success"]
        ]
        if counts:
            causes = ", ".join(f"{cause} {n}" for cause, n in counts.items())
            lines += [f"**{agent}** failure causes: {causes}. Failed: {', '.join(failed)}", ""]
    for agent, ids in data.get("left_out", {}).items():
        lines += [
            f"Left out of **{agent}**'s rows: team tasks, which a peer cannot run: "
            f"{', '.join(ids)}.",
            "",
        ]
    settings = "".join(f"{key}={value} " for key, value in data.get("model_env", {}).items())
    chosen = "".join(f" {argument}" for argument in data.get("selection", []))
    base = f"{settings}.venv/bin/python benchmarks/peers.py --model {data['model']}"
    command = base + chosen
    agents = ",".join(data["runs"])
    if data.get("shards"):
        lines.append("The tasks split over processes, side by side, joined with `--merge`:")
        lines += [f"`{base} --tasks {','.join(ids)} --agents {agents}`" for ids in data["shards"]]
    elif data.get("processes", 1) > 1:
        lines.append("One process per agent, side by side, joined with `--merge`:")
        lines += [f"`{command} --agents {agent}`" for agent in data["runs"]]
    else:
        lines.append(f"`{command} --agents {agents}`")
    return "\n".join(lines) + "\n"


def results_stem(model: str) -> str:
    """Return ``peers_<model>`` with the model's name made safe for a file name."""
    name = Path(model).name if ("/" in model or model.endswith(".gguf")) else model
    return "peers_" + re.sub(r"[^A-Za-z0-9._-]", "_", name.removesuffix(".gguf"))


def write(out_dir: Path, data: dict[str, Any]) -> None:
    """Write ``peers_<model>.json`` and ``.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = results_stem(data["model"])
    (out_dir / f"{stem}.json").write_text(
        json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    (out_dir / f"{stem}.md").write_text(markdown(data), encoding="utf-8")
    print(f"wrote {out_dir}/{stem}.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
