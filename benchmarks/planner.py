"""The planner alone: the plan the model writes for each goal, its tokens and its seconds.

Runs only goalgraph's plan node (the real prompt, schema, profile rules and tools, the task's own
MCP servers included) on the goals of the task suite, and prints, per goal, the plan's tools,
the tokens the model generated and the wall time. With ``--compare`` it joins two such runs
(for example of two commits, each run with ``PYTHONPATH`` pointing at its checkout) and shows
where the plans differ and the ratio of tokens and time::

    .venv/bin/python benchmarks/planner.py --model qwen2.5-coder-0.5b --split tuning --out a.json
    .venv/bin/python benchmarks/planner.py --compare a.json b.json

Team tasks are left out (their plans are the team's). A task's ``before`` goals are not run:
only the task's own goal is planned, with long-term memory off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import environment
from langchain_core.callbacks import get_usage_metadata_callback

from goalgraph.eval.figures import text_table
from goalgraph.eval.suite import TaskSpec, load_suite
from goalgraph.eval.tasks import default_suites, load_model, prepare_task_folder, select_tasks
from goalgraph.nodes.plan import make_plan_node
from goalgraph.resources import AgentResources


async def plan_one(task: TaskSpec, model: Any) -> dict[str, Any]:
    """Plan ``task``'s goal once and return the plan, the tokens generated and the seconds."""
    with contextlib.ExitStack() as stack:
        _, spec = prepare_task_folder(task, stack, keep_in=None, prefix="goalgraph-plan")
        spec = spec.model_copy(
            update={"memory": spec.memory.model_copy(update={"backend": "none"})}
        )
        res = AgentResources(spec, model=model)
        try:
            await res.toolset()  # Start the servers before the clock runs.
            node = make_plan_node(res)
            started = time.perf_counter()
            with get_usage_metadata_callback() as usage:
                update = await node({"goal": task.goal}, {"configurable": {}})
            wall_s = time.perf_counter() - started
        finally:
            await res.aclose()
    tokens = sum(u.get("output_tokens", 0) for u in usage.usage_metadata.values())
    steps = update.get("plan") or []
    return {
        "task_id": task.id,
        "goal": task.goal,
        "reference": reference_tools(task),
        "tools": [step["tool"] for step in steps],
        "steps": [step["description"] for step in steps],
        "note": update.get("feedback") or update.get("status_reason") or "",
        "output_tokens": tokens,
        "wall_s": round(wall_s, 2),
    }


def reference_tools(task: TaskSpec) -> list[str | None] | None:
    """Return the tools of the plan in the task's script (a plan that reaches the goal), or
    ``None`` when the script has none."""
    for turn in task.all_turns():
        if turn.plan:
            return [step.tool for step in turn.plan]
    return None


def agreement(records: list[dict[str, Any]]) -> str:
    """Return how the plans' tools agree with the scripts' plans: the same tools in the same
    order, the same first tool, every scripted tool present, and the steps no script has."""
    judged = [r for r in records if r.get("reference") is not None]
    exact = first = covers = extra = 0
    for r in judged:
        tools = [tool for tool in r["tools"] if tool]
        wanted = [tool for tool in r["reference"] if tool]
        exact += tools == wanted
        first += bool(r["tools"]) and r["tools"][0] == r["reference"][0]
        covers += set(wanted) <= set(tools)
        extra += sum(1 for tool in tools if tool not in wanted)
    return (
        f"against the scripts' plans ({len(judged)} goals): same tools {exact}, same first tool "
        f"{first}, every scripted tool {covers}; {extra} steps with a tool no script uses"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Plan every selected goal with one model and return the records."""
    tasks = select_tasks(
        load_suite(default_suites()), task_ids=args.task, kinds=None, split=args.split
    )
    tasks = [task for task in tasks if not task.is_team()]
    if args.limit:
        tasks = tasks[: args.limit]
    label, factory = load_model(args.model)

    async def all_plans() -> list[dict[str, Any]]:
        if tasks:  # Untimed: the first call also loads kernels and caches.
            await plan_one(tasks[0], factory(tasks[0]))
        records = []
        for done, task in enumerate(tasks, start=1):
            record = await plan_one(task, factory(task))
            records.append(record)
            if args.progress:
                print(
                    f"[{done}/{len(tasks)}] {task.id}: {record['output_tokens']} tokens, "
                    f"{record['wall_s']:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
        return records

    records = asyncio.run(all_plans())
    return {
        "model": label,
        "split": args.split,
        "environment": environment(["torch", "transformers", "langgraph"]),
        "plans": records,
    }


def summary(records: list[dict[str, Any]]) -> list[str]:
    """Return one table row per goal and a total line."""
    rows = [
        [
            r["task_id"],
            " > ".join(map(str, r["tools"])),
            str(r["output_tokens"]),
            f"{r['wall_s']:.1f}",
        ]
        for r in records
    ]
    lines = text_table(["task", "plan's tools", "tokens", "wall s"], rows, {0, 1})
    tokens = [r["output_tokens"] for r in records]
    walls = [r["wall_s"] for r in records]
    lines.append(
        f"{len(records)} plans: {sum(tokens)} tokens generated "
        f"(median {statistics.median(tokens)}), {sum(walls):.1f} s "
        f"(median {statistics.median(walls):.1f} s)"
    )
    lines.append(agreement(records))
    return lines


def compare(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """Return the goals whose plans differ, and the token and time ratios (second / first)."""
    by_id = {r["task_id"]: r for r in second["plans"]}
    pairs = [(r, by_id[r["task_id"]]) for r in first["plans"] if r["task_id"] in by_id]
    rows = []
    for a, b in pairs:
        same = "same" if a["tools"] == b["tools"] else "differ"
        rows.append(
            [
                a["task_id"],
                same,
                " > ".join(map(str, a["tools"])),
                " > ".join(map(str, b["tools"])),
                f"{a['output_tokens']} -> {b['output_tokens']}",
                f"{a['wall_s']:.1f} -> {b['wall_s']:.1f}",
            ]
        )
    lines = text_table(["task", "tools", "first", "second", "tokens", "wall s"], rows, {0, 1, 2, 3})
    same = sum(1 for a, b in pairs if a["tools"] == b["tools"])
    tokens = [sum(pair[side]["output_tokens"] for pair in pairs) for side in (0, 1)]
    walls = [sum(pair[side]["wall_s"] for pair in pairs) for side in (0, 1)]
    lines.append(
        f"{len(pairs)} goals: the same tools in {same}; tokens {tokens[0]} -> {tokens[1]} "
        f"({tokens[1] / max(tokens[0], 1):.2f}x), wall {walls[0]:.0f} s -> {walls[1]:.0f} s "
        f"({walls[1] / max(walls[0], 1e-9):.2f}x)"
    )
    for label, side in (("first", 0), ("second", 1)):
        lines.append(f"{label}: {agreement([pair[side] for pair in pairs])}")
    return lines


def main() -> None:
    """Parse the arguments, plan or compare, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled", help="bundled, a ladder name, folder or GGUF")
    parser.add_argument("--split", default="tuning", help="tuning, heldout or all")
    parser.add_argument("--task", "-t", action="append", help="only this task (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="plan only the first N goals")
    parser.add_argument("--out", type=Path, help="write the records as JSON here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="JSON", help="join two runs")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args()
    if args.compare:
        first, second = (json.loads(p.read_text(encoding="utf-8")) for p in args.compare)
        print("\n".join(compare(first, second)))
        return
    result = run(args)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"model: {result['model']}, split: {args.split}")
    print("\n".join(summary(result["plans"])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
