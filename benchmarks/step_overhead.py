"""Framework overhead per agent step: goalgraph's graph against LangGraph's prebuilt ReAct agent.

What is measured
----------------
Both agents run on the same ``ScriptedChatModel`` with no delay, so no model time is counted: what
remains is the framework (graph scheduling, state reducers, checkpoints, prompt assembly, tool
binding, callbacks) plus a trivial async tool. A *step* is one model decision, one tool call and
its observation:

* goalgraph: think → safety_check → act → reflect (plus, every few steps, the memory compaction
  its default ``memory.window_messages`` triggers). The plan has one step that names ``multiply``
  while the model calls ``add``, so reflect keeps the step open and every call is one iteration
  (a plan holds at most three steps, so "one step per call" cannot reach ``--steps 10``).
* ReAct (``langgraph.prebuilt.create_react_agent``): agent → tools.

Both agents get the same two tools (``add``, ``multiply``), run with ``ainvoke`` (LangGraph's
default durability) on a fresh thread per run, and either use a SQLite checkpointer opened the same
way (``goalgraph.checkpoint.open_sqlite_checkpointer``: WAL, ``synchronous=NORMAL``, one temporary
file per agent) or none. Each repetition times a run of K tool calls and a run of none;
``(T_K − T_0) / K`` is that repetition's overhead per step, so the fixed cost of a run (goalgraph's
plan and summarize_memory, graph start-up) does not count. The four configurations are interleaved
in every repetition, in alternating order, so that a noisy, shared machine slows them alike;
warm-up repetitions are dropped. Garbage is collected before every run, outside the timed section,
with the long-lived heap frozen so that collections during a run cost both agents alike. The ratio
is goalgraph's median over ReAct's median with the SQLite checkpointer.

After timing, one untimed K-step run and one empty run per agent are traced to count the nodes,
checkpoints and checkpoint bytes each step adds, which is where the difference comes from.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/step_overhead.py             # --steps 10 --runs 30
    .venv/bin/python benchmarks/step_overhead.py --json      # machine-readable
    .venv/bin/python benchmarks/step_overhead.py --quick     # a few seconds, as the tests run it
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import environment, percentile, stderr_progress, text_table
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.warnings import LangGraphDeprecationWarning

from goalgraph import AgentSpec, build_graph
from goalgraph.checkpoint import open_sqlite_checkpointer
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

with warnings.catch_warnings():
    warnings.simplefilter("ignore", LangGraphDeprecationWarning)
    from langgraph.prebuilt import create_react_agent

__all__ = ["Options", "Runner", "main", "parse_args", "render_table", "run_benchmark"]

SYSTEMS = ("goalgraph", "react")
MODES = ("sqlite", "none")
LABELS = {"goalgraph": "goalgraph", "react": "LangGraph ReAct"}
GOAL = "Add the numbers"
PACKAGES = (
    "goalgraph",
    "langgraph",
    "langgraph-prebuilt",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
)

Progress = Callable[[int, int, str], None]


@tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def multiply(a: int, b: int) -> int:
    """Multiply two integers (offered to both agents, never called)."""
    return a * b


TOOLS: list[BaseTool] = [add, multiply]


@dataclass(frozen=True)
class Options:
    """What to run.

    Attributes:
        steps: Tool calls (steps) in the long run of each repetition (K).
        runs: Measured repetitions per configuration.
        warmup: Repetitions run first and dropped.
        json: Print JSON instead of the table.
        plot: Write a PNG box plot here (needs matplotlib).
        progress: Report progress on stderr.
    """

    steps: int = 10
    runs: int = 30
    warmup: int = 3
    json: bool = False
    plot: Path | None = None
    progress: bool = True


def goalgraph_script(steps: int) -> list[AIMessage]:
    """Return goalgraph's responses: a plan, ``steps`` calls of ``add``, the final answer."""
    calls = [tool_call("add", a=i, b=1) for i in range(steps)]  # Distinct args: no loop block.
    return [plan(("Add the numbers", "multiply")), *calls, final_answer(str(steps))]


def react_script(steps: int) -> list[AIMessage]:
    """Return the ReAct agent's responses: ``steps`` calls of ``add``, then a plain answer."""
    calls = [tool_call("add", a=i, b=1) for i in range(steps)]
    return [*calls, AIMessage(content=str(steps))]


def _input(system: str) -> dict[str, Any]:
    if system == "goalgraph":
        return {"goal": GOAL}
    return {"messages": [HumanMessage(GOAL)]}


def _config(steps: int, thread_id: str | None = None) -> RunnableConfig:
    return {
        "configurable": {"thread_id": thread_id or uuid.uuid4().hex},
        "recursion_limit": 8 * steps + 25,
    }


@dataclass
class Runner:
    """One agent under one checkpointer mode, with the wall times of its runs.

    Attributes:
        system: ``goalgraph`` or ``react``.
        mode: ``sqlite`` or ``none``.
        graph: The compiled graph.
        model: Its scripted model; each run loads a fresh script into it.
        saver: The SQLite checkpointer, or ``None``.
        full_s: Wall times (seconds) of the measured K-step runs.
        empty_s: Wall times (seconds) of the measured 0-step runs.
    """

    system: str
    mode: str
    graph: Any
    model: ScriptedChatModel
    saver: AsyncSqliteSaver | None
    full_s: list[float] = field(default_factory=list)
    empty_s: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Return ``system/mode``."""
        return f"{self.system}/{self.mode}"

    def _load(self, steps: int) -> None:
        script = goalgraph_script(steps) if self.system == "goalgraph" else react_script(steps)
        self.model.responses[:] = script
        self.model.calls.clear()
        self.model.tool_names.clear()

    def _check(self, output: dict[str, Any], steps: int) -> None:
        if self.model.responses:
            raise RuntimeError(f"{self.key}: the run ended before its script did")
        if self.system == "goalgraph":
            ok = output.get("status") == "done"
        else:
            messages = output["messages"]
            tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
            ok = len(tool_messages) == steps and not messages[-1].tool_calls
        if not ok:
            raise RuntimeError(f"{self.key}: a {steps}-step run did not end as scripted")

    async def run(self, steps: int) -> float:
        """Run ``steps`` tool calls on a fresh thread; return the wall time in seconds."""
        self._load(steps)
        graph_input, config = _input(self.system), _config(steps)
        gc.collect()  # Start every run from the same heap, outside the timed section.
        started = time.perf_counter()
        output = await self.graph.ainvoke(graph_input, config)
        elapsed = time.perf_counter() - started
        self._check(output, steps)
        return elapsed

    async def trace(self, steps: int, thread_id: str) -> list[str]:
        """Run ``steps`` tool calls on ``thread_id`` (untimed); return the nodes that ran."""
        self._load(steps)
        nodes: list[str] = []
        config = _config(steps, thread_id)
        async for chunk in self.graph.astream(_input(self.system), config, stream_mode="updates"):
            nodes.extend(name for name in chunk if not name.startswith("__"))
        if self.model.responses:
            raise RuntimeError(f"{self.key}: the traced run ended before its script did")
        return nodes


def build_runner(system: str, mode: str, saver: AsyncSqliteSaver | None, steps: int) -> Runner:
    """Compile ``system`` (``goalgraph`` or ``react``) over ``saver`` with a scripted model."""
    model = ScriptedChatModel()
    if system == "goalgraph":
        spec = AgentSpec(
            builtin_tools=False,
            limits={"max_steps": steps + 5},
            # Audited like any run, into a scratch folder instead of the user's data directory.
            safety={"audit_dir": Path(tempfile.gettempdir()) / "goalgraph-step-overhead-audit"},
        )
        graph = build_graph(spec, model=model, tools=TOOLS, checkpointer=saver)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LangGraphDeprecationWarning)
            graph = create_react_agent(model, TOOLS, checkpointer=saver)
    return Runner(system, mode, graph, model, saver)


async def measure(runners: Sequence[Runner], opts: Options, progress: Progress) -> None:
    """Time every runner's K-step and 0-step runs, interleaved, into ``full_s``/``empty_s``."""
    total = (opts.warmup + opts.runs) * len(runners)
    done = 0
    gc.collect()
    gc.freeze()  # Keep the long-lived heap (imports, graphs) out of every later collection.
    try:
        for rep in range(opts.warmup + opts.runs):
            order = runners if rep % 2 == 0 else runners[::-1]
            sizes = (opts.steps, 0) if rep % 2 == 0 else (0, opts.steps)
            for runner in order:
                times = {size: await runner.run(size) for size in sizes}
                if rep >= opts.warmup:
                    runner.full_s.append(times[opts.steps])
                    runner.empty_s.append(times[0])
                done += 1
                progress(done, total, runner.key)
    finally:
        gc.unfreeze()


async def _db_stats(saver: AsyncSqliteSaver, thread_id: str) -> dict[str, int]:
    queries = {
        "checkpoints": "SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0)"
        " FROM checkpoints WHERE thread_id = ?",
        "writes": "SELECT count(*), coalesce(sum(length(value)), 0)"
        " FROM writes WHERE thread_id = ?",
    }
    stats: dict[str, int] = {}
    for table, query in queries.items():
        async with saver.conn.execute(query, (thread_id,)) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        stats[table], stats[f"{table}_bytes"] = int(row[0]), int(row[1])
    return stats


async def profile(runner: Runner, steps: int) -> dict[str, Any]:
    """Trace one K-step and one empty run; return what each step adds (nodes, checkpoints)."""
    threads = {
        size: f"profile-{runner.system}-{size}-{uuid.uuid4().hex[:8]}" for size in (steps, 0)
    }
    nodes = {size: await runner.trace(size, thread) for size, thread in threads.items()}
    assert runner.saver is not None
    db = {size: await _db_stats(runner.saver, thread) for size, thread in threads.items()}
    added = Counter(nodes[steps])
    added.subtract(nodes[0])

    def per_step(count: int | float) -> float:
        return round(count / steps, 2)

    return {
        "nodes_per_step": per_step(len(nodes[steps]) - len(nodes[0])),
        "node_mix": {name: count for name, count in added.items() if count},
        "checkpoints_per_step": per_step(db[steps]["checkpoints"] - db[0]["checkpoints"]),
        "write_rows_per_step": per_step(db[steps]["writes"] - db[0]["writes"]),
        "kb_per_step": per_step(
            (db[steps]["checkpoints_bytes"] + db[steps]["writes_bytes"]) / 1024
            - (db[0]["checkpoints_bytes"] + db[0]["writes_bytes"]) / 1024
        ),
        "run": {"nodes": len(nodes[steps]), **db[steps]},
        "empty_run": {"nodes": len(nodes[0]), **db[0]},
    }


def summarize(runner: Runner, steps: int) -> dict[str, Any]:
    """Return a runner's per-step overhead (median, p90) and run totals in milliseconds."""
    per_step = [
        (full - empty) * 1e3 / steps
        for full, empty in zip(runner.full_s, runner.empty_s, strict=True)
    ]
    return {
        "system": runner.system,
        "checkpointer": runner.mode,
        "per_step_ms_median": round(statistics.median(per_step), 3),
        "per_step_ms_p90": round(percentile(per_step, 90), 3),
        "run_ms_median": round(statistics.median(runner.full_s) * 1e3, 2),
        "empty_run_ms_median": round(statistics.median(runner.empty_s) * 1e3, 2),
        "per_step_ms": [round(x, 4) for x in per_step],
        "run_ms": [round(x * 1e3, 3) for x in runner.full_s],
        "empty_run_ms": [round(x * 1e3, 3) for x in runner.empty_s],
    }


def _ratio(rows: Sequence[dict[str, Any]], mode: str) -> float:
    by_system = {r["system"]: r for r in rows if r["checkpointer"] == mode}
    ours, theirs = (by_system[s]["per_step_ms_median"] for s in SYSTEMS)
    return round(ours / theirs, 2) if theirs > 0 else math.inf


def summary_line(result: dict[str, Any]) -> str:
    """Return the one-line result, for docs/evaluation.md."""
    rows = {(r["system"], r["checkpointer"]): r for r in result["results"]}
    ours, theirs = rows["goalgraph", "sqlite"], rows["react", "sqlite"]
    return (
        f"Framework overhead per step with the SQLite checkpointer: goalgraph "
        f"{ours['per_step_ms_median']:.2f} ms, LangGraph ReAct {theirs['per_step_ms_median']:.2f}"
        f" ms (median of {result['options']['runs']} interleaved repetitions of "
        f"{result['options']['steps']} steps): ratio {result['ratio']:.2f}x."
    )


async def run_benchmark(opts: Options, progress: Progress | None = None) -> dict[str, Any]:
    """Build both agents in both modes, time them interleaved, profile them; return the result."""
    progress = progress or (lambda done, total, label: None)
    with tempfile.TemporaryDirectory(prefix="goalgraph-bench-") as tmp:
        savers = {s: await open_sqlite_checkpointer(Path(tmp) / f"{s}.sqlite") for s in SYSTEMS}
        try:
            runners = [
                build_runner(s, m, savers[s] if m == "sqlite" else None, opts.steps)
                for m in MODES
                for s in SYSTEMS
            ]
            await measure(runners, opts, progress)
            profiles = {r.system: await profile(r, opts.steps) for r in runners if r.saver}
        finally:
            for saver in savers.values():
                await saver.conn.close()
    rows = [summarize(r, opts.steps) for r in runners]
    result: dict[str, Any] = {
        "options": {"steps": opts.steps, "runs": opts.runs, "warmup": opts.warmup},
        "results": rows,
        "ratio": _ratio(rows, "sqlite"),
        "ratio_no_checkpointer": _ratio(rows, "none"),
        "profile": profiles,
        "environment": environment(PACKAGES),
    }
    result["summary"] = summary_line(result)
    return result


def render_table(result: dict[str, Any]) -> str:
    """Return the timing and profile tables as plain text."""
    k, opts = result["options"]["steps"], result["options"]
    timing = [
        [
            LABELS[r["system"]],
            r["checkpointer"],
            f"{r['per_step_ms_median']:.3f}",
            f"{r['per_step_ms_p90']:.3f}",
            f"{r['run_ms_median']:.2f}",
            f"{r['empty_run_ms_median']:.2f}",
        ]
        for r in result["results"]
    ]
    header = [
        "agent",
        "checkpointer",
        "ms/step median",
        "ms/step p90",
        f"run K={k} ms",
        "run K=0 ms",
    ]
    profile = [
        [
            LABELS[system],
            f"{p['nodes_per_step']:.1f}",
            f"{p['checkpoints_per_step']:.1f}",
            f"{p['write_rows_per_step']:.1f}",
            f"{p['kb_per_step']:.1f}",
            " ".join(f"{name}:{count}" for name, count in p["node_mix"].items()),
        ]
        for system, p in result["profile"].items()
    ]
    prof_header = ["agent", "nodes", "checkpoints", "write rows", "KB", f"nodes added by {k} steps"]
    return "\n".join(
        [
            "Framework overhead per step (scripted model, no model time): (T_K - T_0) / K",
            f"K={k} tool calls per run, {opts['runs']} interleaved repetitions"
            f" (+{opts['warmup']} warm-up), ainvoke, a fresh thread per run.",
            "",
            *text_table(header, timing, left={0, 1}),
            "",
            f"goalgraph / ReAct (median ms/step): {result['ratio']:.2f}x with SQLite,"
            f" {result['ratio_no_checkpointer']:.2f}x without a checkpointer",
            "",
            "Per step, SQLite checkpointer (one untimed traced run):",
            *text_table(prof_header, profile, left={0, 5}),
        ]
    )


def write_plot(result: dict[str, Any], path: Path) -> bool:
    """Write a box plot of the per-step samples to ``path``; return False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = result["results"]
    labels = [f"{LABELS[r['system']]}\n{r['checkpointer']}" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot([r["per_step_ms"] for r in rows])
    ax.set_xticks(range(1, len(rows) + 1), labels)
    ax.set_ylabel("framework overhead per step (ms)")
    ax.set_title(f"goalgraph / ReAct with SQLite: {result['ratio']:.2f}x (median)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line into ``Options``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="tool calls per run, K (default 10)")
    parser.add_argument("--runs", type=int, help="measured repetitions (default 30)")
    parser.add_argument("--warmup", type=int, help="dropped warm-up repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="a small run, for tests")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--plot", type=Path, help="write a PNG box plot (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    defaults = (3, 3, 1) if args.quick else (10, 30, 3)
    steps, runs, warmup = (
        default if value is None else value
        for value, default in zip((args.steps, args.runs, args.warmup), defaults, strict=True)
    )
    if steps < 1 or runs < 1 or warmup < 0:
        parser.error("--steps and --runs must be at least 1, --warmup at least 0")
    return Options(steps, runs, warmup, args.json, args.plot, not args.no_progress)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print and return the result."""
    opts = parse_args(argv)
    result = asyncio.run(run_benchmark(opts, stderr_progress if opts.progress else None))
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_table(result))
        print()
        print(result["summary"])
    if opts.plot is not None and not write_plot(result, opts.plot):
        print("matplotlib is not installed: no plot written", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
