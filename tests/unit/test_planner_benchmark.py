"""benchmarks/planner.py: the plan node alone on suite goals, and the join of two runs."""

from __future__ import annotations

import asyncio

from helpers import load_benchmark

from goalgraph.eval.suite import default_suite_dir, load_suite, scripted_model

planner = load_benchmark("planner")


def _task(task_id: str):
    folder = default_suite_dir()
    assert folder is not None
    (task,) = [task for task in load_suite([folder]) if task.id == task_id]
    return task


def test_plan_one_plans_a_goal_with_the_tasks_own_server():
    """The stockroom task's tools come from its own MCP server, so a plan naming its tool is
    kept only if that server really started."""
    task = _task("shop-ship-ada")
    record = asyncio.run(planner.plan_one(task, scripted_model(task.all_turns())))
    assert record["task_id"] == "shop-ship-ada"
    assert record["tools"] == ["ship_order"]
    assert record["steps"] == ["Mark order SO-1001 as shipped"]
    assert record["reference"] == ["ship_order"]
    assert record["wall_s"] > 0 and record["note"] == ""


def test_compare_counts_the_goals_planned_alike_and_the_ratios():
    def run(*plans):
        return {
            "plans": [
                dict(zip(("task_id", "tools", "output_tokens", "wall_s"), p, strict=True))
                for p in plans
            ]
        }

    first = run(("a", ["x", "y"], 100, 10.0), ("b", ["x"], 50, 5.0))
    second = run(("a", ["x", "y"], 60, 6.0), ("b", ["z"], 40, 3.0))
    lines = planner.compare(first, second)
    assert any(line.startswith("b ") and "differ" in line for line in lines)
    assert lines[-3] == (
        "2 goals: the same tools in 1; tokens 150 -> 100 (0.67x), wall 15 s -> 9 s (0.60x)"
    )


def test_agreement_with_the_scripts_plans():
    """A plan agrees when its tools are the script's; a plan that adds a tool still covers it."""
    records = [
        {"reference": ["read_file", "write_file"], "tools": ["read_file", "write_file"]},
        {"reference": ["read_file"], "tools": ["read_file", "http_get", None]},
        {"reference": ["ship_order"], "tools": ["search_products"]},
        {"reference": None, "tools": ["calculator"]},
    ]
    assert planner.agreement(records) == (
        "against the scripts' plans (3 goals): same tools 1, same first tool 2, every scripted "
        "tool 2; 2 steps with a tool no script uses"
    )
