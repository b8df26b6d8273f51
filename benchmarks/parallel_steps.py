"""Wall time of a plan of k independent tool steps: parallel steps against one step at a time.

What is measured
----------------
A plan of k steps, none depending on another, each calling a tool that waits ``--seconds``
(1 s, like a slow network call), runs twice per k in one process: with
``limits.max_parallel_steps`` 1 (the sequential path) and with it equal to k (every step in its own
branch at once). The ratio sequential / parallel is the speed-up; the target is close to k.

The model is a ``ScriptedChatModel`` without delay: each think turn fills in the planned tool's
call at once, so the time is the tools' waiting plus goalgraph's own work (graph, SQLite
checkpoints in a temporary file, the join). With a real local model the turns would add their
generation time, and the model layer generates one turn at a time, so only the tools' waiting
overlaps; that is the case this measures.

The plan is written into the run's checkpoint as the plan node's output (LangGraph
``update_state(..., as_node="plan")``) and the run continues from there, because a planned plan
holds at most five steps (``goalgraph.plan.MAX_PLAN_STEPS``) and k goes to 8.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/parallel_steps.py              # k = 2, 4, 8; 1 s per tool
    .venv/bin/python benchmarks/parallel_steps.py --json
    .venv/bin/python benchmarks/parallel_steps.py --quick      # 0.05 s per tool, as tests run it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import environment, text_table
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import BaseTool, tool

from goalgraph import Agent, AgentSpec
from goalgraph.nodes.common import new_counters
from goalgraph.state import PlanStep
from goalgraph.testing import ScriptedChatModel, final_answer, tool_call

__all__ = ["main", "measure"]


def waiting_tool(seconds: float) -> BaseTool:
    """Return a tool that waits ``seconds`` without using the CPU, then names its label."""

    @tool
    async def wait(label: str) -> str:
        """Wait a while (like a slow network call), then answer with the label."""
        await asyncio.sleep(seconds)
        return f"waited for {label}"

    return wait


def _policy(messages: list[BaseMessage], names: list[str]) -> AIMessage:
    """Call ``wait`` for the step the prompt names; give the answer once every step is done."""
    if names == ["final_answer"]:
        return final_answer("all waited")
    found = re.search(r"Current step (\d+)", str(messages[1].content))
    return tool_call("wait", label=f"step {found.group(1) if found else '?'}")


def _plan(k: int) -> list[PlanStep]:
    return [
        PlanStep(
            id=i,
            description=f"Wait for source {i}",
            tool="wait",
            depends_on=[],
            success_criteria="the wait ends",
            status="pending",
            attempts=0,
            result=None,
        )
        for i in range(1, k + 1)
    ]


async def run_plan(agent: Agent, k: int) -> tuple[float, dict[str, Any]]:
    """Run a plan of ``k`` independent steps on ``agent``; return its wall time and result."""
    graph = await agent.graph()
    config = agent.run_config(uuid.uuid4().hex)
    planned = {
        "goal": f"Wait for {k} sources",
        "plan": _plan(k),
        "current_step": 1,
        "status": "running",
        "counters": new_counters(),
        "route": "",
    }
    started = time.perf_counter()
    await graph.aupdate_state(config, planned, as_node="plan")
    values = await graph.ainvoke(None, config)
    took = time.perf_counter() - started
    return took, dict(values)


async def measure(ks: Sequence[int], seconds: float, folder: Path) -> list[dict[str, Any]]:
    """Time each ``k`` sequentially and in parallel; return one row per k."""
    rows = []
    for k in ks:
        row: dict[str, Any] = {"k": k, "tool_seconds": seconds}
        for mode, parallel in (("sequential", 1), ("parallel", k)):
            spec = AgentSpec(
                builtin_tools=False,
                final_answer="model",
                memory={"backend": "none"},
                checkpoint_path=folder / f"{mode}-{k}.sqlite",
                limits={"max_parallel_steps": parallel, "max_steps": 4 * k},
            )
            model = ScriptedChatModel(policy=_policy)
            agent = Agent(spec, model=model, tools=[waiting_tool(seconds)])
            try:
                took, values = await run_plan(agent, k)
            finally:
                await agent.aclose()
            done = sum(step["status"] == "done" for step in values.get("plan") or [])
            if values.get("status") != "done" or done != k:
                raise RuntimeError(f"{mode} run of k={k} ended {values.get('status')}: {values}")
            row[f"{mode}_s"] = round(took, 3)
        row["ratio"] = round(row["sequential_s"] / row["parallel_s"], 2)
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table (or JSON) and return the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="2,4,8", help="plan sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=1.0, help="each tool's wait")
    parser.add_argument("--quick", action="store_true", help="0.05 s waits, k = 2 and 4")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    ks = [2, 4] if args.quick else [int(k) for k in args.ks.split(",")]
    seconds = 0.05 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(measure(ks, seconds, Path(tmp)))
    result = {
        "results": rows,
        "environment": environment(["langgraph", "langchain-core"]),
        "summary": ", ".join(f"k={r['k']}: {r['ratio']:g}x" for r in rows),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        header = ["k", "tool s", "sequential s", "parallel s", "ratio (target k)"]
        body = [
            [
                str(r["k"]),
                f"{r['tool_seconds']:g}",
                f"{r['sequential_s']:.2f}",
                f"{r['parallel_s']:.2f}",
                f"{r['ratio']:.2f}",
            ]
            for r in rows
        ]
        print("\n".join(text_table(header, body, left=set())))
        print(f"speed-up: {result['summary']}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
