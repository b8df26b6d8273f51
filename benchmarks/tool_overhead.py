"""Per-call overhead of an MCP tool through goalgraph's whole stack, against a direct MCP call.

What is measured
----------------
Every variant calls ``calculator`` on goalgraph's own MCP server, a separate process started over
stdio exactly as ``AgentSpec.all_servers()`` starts it (``python -m goalgraph.tools.server
--workspace DIR --config ...``). Call ``i`` of a run evaluates ``12*(3+4)+i``: the agent needs
distinct arguments (its loop detection blocks a third identical call), and the other variants get
the same list so that every variant does the same tool work. The variants, from the bare protocol
up to a whole agent step:

* ``direct``: the ``mcp`` SDK's ``ClientSession.call_tool`` on a kept stdio session; no LangChain.
* ``adapter``: the LangChain tool that ``langchain_mcp_adapters.tools.load_mcp_tools(session)``
  builds, invoked with plain arguments (``tool.ainvoke({...})``) on the same kept session.
* ``toolbox``: ``ToolBox.call``, goalgraph's wrapper over the adapter tool (a ``ToolCall`` so that
  errors are told apart, the timeout race against a dead server, output normalisation). Own
  server process.
* ``agent-sqlite`` and ``agent-memory``: an ``Agent`` with ``builtin_tools=True`` (its own
  server process through its own ``ToolBox``) and a ``ScriptedChatModel``. The script plans one
  step that names ``read_file`` while the model calls ``calculator`` N times, so reflect keeps the
  step open and every call is one iteration, then answers with ``final_answer``. One iteration is
  think (the scripted model, invoked through LangChain like a real one but without model time),
  safety_check (policy and argument validation against the schema), act (``ToolBox.call``),
  reflect, a checkpoint after every node, and, every few calls, the memory compaction that
  ``memory.window_messages`` triggers. The spec is otherwise the default, so whatever else
  goalgraph does by default on an action (e.g. its audit log, kept in the temporary folder here)
  counts too. The checkpointer is a temporary SQLite file opened by
  ``goalgraph.checkpoint.open_sqlite_checkpointer`` (what ``Agent`` opens by default) or
  LangGraph's ``InMemorySaver``. Runs use ``Agent.arun``, the public API, on a fresh thread; the
  thread is deleted after each run, untimed, so that every repetition starts from the same store.
* ``agent-inprocess`` (a reference, not MCP): the same SQLite agent over a plain async LangChain
  ``calculator`` tool in this process (and a stub ``read_file`` for the plan to name), so its
  difference to ``agent-sqlite`` is what MCP and ``ToolBox`` add inside the whole stack.

How
---
``direct`` and ``adapter`` share one server process and session; ``toolbox`` and each agent have
their own, so every family keeps one server for the whole benchmark. A repetition times, for each
variant in turn, a batch of N calls (per call: ``T / N``) or, for an agent, a run of N calls and a
run of none (per call: ``(T_N − T_0) / N``, so the fixed cost of a run, the plan and the final
answer, graph start-up, does not count; what remains is the mean iteration of an N-call run,
whose state grows as it goes). The variants are interleaved in every repetition, in
alternating order (and the agents alternate which run goes first), so that a noisy, shared machine
slows them alike; warm-up repetitions are dropped. Garbage is collected before every timed section,
with the long-lived heap frozen. The table shows the median and p90 per call; a variant's ratio is
the median over repetitions of (its per-call time / ``direct``'s per-call time in the same
repetition).

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/tool_overhead.py             # --calls 50 --runs 30, about a minute
    .venv/bin/python benchmarks/tool_overhead.py --json      # machine-readable
    .venv/bin/python benchmarks/tool_overhead.py --quick     # a few seconds, as the tests run it
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import environment, percentile, stderr_progress, text_table
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langchain_mcp_adapters.tools import load_mcp_tools
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from goalgraph import Agent, AgentSpec
from goalgraph.checkpoint import open_sqlite_checkpointer
from goalgraph.spec import BUILTIN_SERVER, McpServerSpec
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
from goalgraph.tools.calculator import calculate
from goalgraph.tools.toolbox import ToolBox, ToolResult, content_to_text

__all__ = [
    "AgentVariant",
    "CallVariant",
    "Options",
    "main",
    "parse_args",
    "render_table",
    "run_benchmark",
]

TOOL = "calculator"
PLANNED_TOOL = "read_file"  # The plan names it, the model never calls it: the step stays open.
GOAL = "Compute 12*(3+4) plus each number up to N"
BASELINE = "direct"
PACKAGES = (
    "goalgraph",
    "mcp",
    "langchain-mcp-adapters",
    "langchain-core",
    "langgraph",
    "langgraph-checkpoint-sqlite",
)

Progress = Callable[[int, int, str], None]


def expression(i: int) -> str:
    """Return the calculator expression of call ``i``: ``12*(3+4)+i``."""
    return f"12*(3+4)+{i}"


def expected(i: int) -> str:
    """Return the calculator's answer to call ``i``."""
    return str(84 + i)


@tool(TOOL)
async def inprocess_calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return calculate(expression)


@tool(PLANNED_TOOL)
async def inprocess_read_file(path: str) -> str:
    """Read a workspace file (named by the plan, never called)."""
    raise RuntimeError("the benchmark never reads files")


INPROCESS_TOOLS: list[BaseTool] = [inprocess_calculator, inprocess_read_file]


@dataclass(frozen=True)
class Options:
    """What to run.

    Attributes:
        calls: Tool calls per timed batch or agent run (N).
        runs: Measured repetitions per variant.
        warmup: Repetitions run first and dropped.
        json: Print JSON instead of the table.
        progress: Report progress on stderr.
    """

    calls: int = 50
    runs: int = 30
    warmup: int = 3
    json: bool = False
    progress: bool = True


class CallVariant:
    """A variant that calls the tool directly: each sample times a batch of N calls."""

    def __init__(
        self,
        key: str,
        label: str,
        call: Callable[[dict[str, Any]], Awaitable[Any]],
        text: Callable[[Any], str],
    ) -> None:
        """Wrap ``call`` (one tool call with its arguments); ``text`` reads its answer."""
        self.key = key
        self.label = label
        self._call = call
        self._text = text
        self.per_call_ms: list[float] = []

    async def sample(self, calls: int, flip: bool) -> float:
        """Time ``calls`` sequential calls; return milliseconds per call (``flip`` is unused)."""
        arguments = [{"expression": expression(i)} for i in range(calls)]
        gc.collect()  # Outside the timed section.
        started = time.perf_counter()
        outputs = [await self._call(args) for args in arguments]
        elapsed = time.perf_counter() - started
        answers = [self._text(output) for output in outputs]
        wanted = [expected(i) for i in range(calls)]
        if answers != wanted:
            raise RuntimeError(
                f"{self.key}: unexpected answers {answers[:3]}... (not {wanted[:3]})"
            )
        return elapsed * 1e3 / calls


@dataclass
class AgentVariant:
    """A scripted ``Agent``; each sample is ``(T_N − T_0) / N`` from a run of N calls and of none.

    Attributes:
        key: Short name, e.g. ``agent-sqlite``.
        label: Name shown in the table.
        agent: The agent (opened, with its tool server running after the first run).
        model: Its scripted model; every run loads a fresh script into it.
        saver: Its checkpointer; each run's thread is deleted from it afterwards.
        per_call_ms: The measured samples.
        run_ms: Wall times of the measured N-call runs.
        empty_run_ms: Wall times of the measured 0-call runs.
    """

    key: str
    label: str
    agent: Agent
    model: ScriptedChatModel
    saver: BaseCheckpointSaver[Any]
    per_call_ms: list[float] = field(default_factory=list)
    run_ms: list[float] = field(default_factory=list)
    empty_run_ms: list[float] = field(default_factory=list)

    async def run(self, calls: int) -> float:
        """Run the agent through ``calls`` calculator calls; return the wall time in ms."""
        self.model.responses[:] = agent_script(calls)
        self.model.calls.clear()
        self.model.tool_names.clear()
        gc.collect()  # Outside the timed section.
        started = time.perf_counter()
        result = await self.agent.arun(GOAL)
        elapsed = time.perf_counter() - started
        await self.saver.adelete_thread(result.thread_id)
        counters = result.counters
        tool_calls = counters["tool_calls"] if counters else -1
        failed = [o["content"] for o in result.observations if not o["ok"]]
        if result.status != "done" or tool_calls != calls or failed or self.model.responses:
            raise RuntimeError(
                f"{self.key}: a {calls}-call run ended {result.status!r} ({result.message}) after"
                f" {tool_calls} tool calls; failures: {failed[:2]}"
            )
        return elapsed * 1e3

    async def sample(self, calls: int, flip: bool) -> float:
        """Time a run of ``calls`` calls and an empty one (in the order ``flip`` picks)."""
        sizes = (0, calls) if flip else (calls, 0)
        times = {size: await self.run(size) for size in sizes}
        self.run_ms.append(times[calls])
        self.empty_run_ms.append(times[0])
        return (times[calls] - times[0]) / calls


Variant = CallVariant | AgentVariant


def agent_script(calls: int) -> list[AIMessage]:
    """Return the agent's responses: a one-step plan, ``calls`` calculator calls, the answer."""
    steps = [tool_call(TOOL, expression=expression(i)) for i in range(calls)]
    return [plan(("Compute the sums", PLANNED_TOOL)), *steps, final_answer("done")]


def server_spec(workspace: Path) -> McpServerSpec:
    """Return goalgraph's own MCP server exactly as ``AgentSpec.all_servers()`` starts it."""
    return AgentSpec(workspace=workspace, builtin_tools=True).all_servers()[BUILTIN_SERVER]


def _mcp_text(result: CallToolResult) -> str:
    if result.isError:
        raise RuntimeError(f"calculator failed: {result.content}")
    return content_to_text(result.content, result.structuredContent)


def _lc_text(content: Any) -> str:
    return content_to_text(content)


def _toolbox_text(result: ToolResult) -> str:
    if not result.ok:
        raise RuntimeError(f"calculator failed: {result.error}")
    return result.content


def agent_spec(tmp: Path, key: str, *, mcp: bool, calls: int) -> AgentSpec:
    """Return the spec of agent ``key``: every file it writes goes under ``tmp``."""
    fields: dict[str, Any] = {
        "builtin_tools": mcp,
        "workspace": tmp / f"{key}-workspace",
        "checkpoint_path": tmp / f"{key}.sqlite",
        "limits": {"max_steps": calls + 5},
        "safety": {"audit_dir": tmp / f"{key}-audit"},
    }
    return AgentSpec(**fields)


async def open_call_variants(
    stack: contextlib.AsyncExitStack, workspace: Path
) -> list[CallVariant]:
    """Start the servers of ``direct``/``adapter`` (shared) and ``toolbox``; return the three."""
    spec = server_spec(workspace)
    assert spec.command is not None
    params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env)
    read, write = await stack.enter_async_context(stdio_client(params))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    adapter_tool = next(t for t in await load_mcp_tools(session) if t.name == TOOL)
    box = await stack.enter_async_context(ToolBox.open({BUILTIN_SERVER: spec}))

    async def direct(args: dict[str, Any]) -> CallToolResult:
        return await session.call_tool(TOOL, args)

    async def toolbox(args: dict[str, Any]) -> ToolResult:
        return await box.call(TOOL, args)

    return [
        CallVariant("direct", "MCP ClientSession.call_tool", direct, _mcp_text),
        CallVariant(
            "adapter", "langchain-mcp-adapters tool", adapter_tool.ainvoke, content_to_text
        ),
        CallVariant("toolbox", "goalgraph ToolBox.call", toolbox, _toolbox_text),
    ]


async def open_agent_variants(
    stack: contextlib.AsyncExitStack, tmp: Path, calls: int
) -> list[AgentVariant]:
    """Build the agents (SQLite, in memory, in-process tool); each is warmed by one run."""
    variants: list[AgentVariant] = []
    configs = [
        ("agent-sqlite", "Agent step, SQLite checkpointer", "sqlite", True),
        ("agent-memory", "Agent step, InMemorySaver", "memory", True),
        ("agent-inprocess", "Agent step, in-process tool (no MCP)", "sqlite", False),
    ]
    for key, label, saver_kind, mcp in configs:
        saver: BaseCheckpointSaver[Any]
        if saver_kind == "sqlite":
            sqlite = await open_sqlite_checkpointer(tmp / f"{key}.sqlite")
            stack.push_async_callback(sqlite.conn.close)
            saver = sqlite
        else:
            saver = InMemorySaver()
        spec = agent_spec(tmp, key, mcp=mcp, calls=calls)
        model = ScriptedChatModel()
        agent = Agent(spec, model=model, tools=None if mcp else INPROCESS_TOOLS, checkpointer=saver)
        stack.push_async_callback(agent.aclose)  # Stops its MCP server.
        variant = AgentVariant(key, label, agent, model, saver)
        await variant.run(1)  # Opens the tool box (starts the server) and compiles the graph.
        variants.append(variant)
    return variants


async def measure(variants: Sequence[Variant], opts: Options, progress: Progress) -> None:
    """Take every variant's samples, interleaved, in alternating order; drop the warm-up."""
    total = (opts.warmup + opts.runs) * len(variants)
    done = 0
    gc.collect()
    gc.freeze()  # Keep the long-lived heap (imports, graphs, sessions) out of every collection.
    try:
        for rep in range(opts.warmup + opts.runs):
            flip = rep % 2 == 1
            for variant in variants[::-1] if flip else variants:
                value = await variant.sample(opts.calls, flip)
                if rep >= opts.warmup:
                    variant.per_call_ms.append(value)
                elif isinstance(variant, AgentVariant):  # Warm-up runs are not reported.
                    del variant.run_ms[-1], variant.empty_run_ms[-1]
                done += 1
                progress(done, total, variant.key)
    finally:
        gc.unfreeze()


def summarize(variant: Variant, baseline: Sequence[float]) -> dict[str, Any]:
    """Return a variant's per-call median, p90 and its ratio to ``baseline`` (paired by rep)."""
    samples = variant.per_call_ms
    ratios = [ours / base for ours, base in zip(samples, baseline, strict=True) if base > 0]
    row: dict[str, Any] = {
        "variant": variant.key,
        "label": variant.label,
        "per_call_ms_median": round(statistics.median(samples), 4),
        "per_call_ms_p90": round(percentile(samples, 90), 4),
        "ratio_vs_direct": round(statistics.median(ratios), 2) if ratios else math.inf,
        "per_call_ms": [round(x, 4) for x in samples],
    }
    if isinstance(variant, AgentVariant):
        row["run_ms_median"] = round(statistics.median(variant.run_ms), 2)
        row["empty_run_ms_median"] = round(statistics.median(variant.empty_run_ms), 2)
    return row


def summary_line(result: dict[str, Any]) -> str:
    """Return the one-line result, for docs/evaluation.md."""
    rows = {r["variant"]: r for r in result["results"]}
    direct, stack = rows["direct"], rows["agent-sqlite"]
    return (
        f"One MCP calculator call: {direct['per_call_ms_median']:.2f} ms direct "
        f"(ClientSession.call_tool), {rows['toolbox']['per_call_ms_median']:.2f} ms through "
        f"ToolBox.call, {stack['per_call_ms_median']:.2f} ms per agent step with SQLite "
        f"(median of {result['options']['runs']} interleaved repetitions of "
        f"{result['options']['calls']} calls): {stack['ratio_vs_direct']:.1f}x direct."
    )


async def run_benchmark(opts: Options, progress: Progress | None = None) -> dict[str, Any]:
    """Start the servers and agents, time every variant interleaved; return the result."""
    report = progress or (lambda done, total, label: None)
    with tempfile.TemporaryDirectory(prefix="goalgraph-tool-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        async with contextlib.AsyncExitStack() as stack:
            if progress is not None:
                print("starting MCP servers and agents...", file=sys.stderr, flush=True)
            variants: list[Variant] = [*await open_call_variants(stack, tmp / "workspace")]
            variants += await open_agent_variants(stack, tmp, opts.calls)
            await measure(variants, opts, report)
    baseline = next(v for v in variants if v.key == BASELINE).per_call_ms
    rows = [summarize(variant, baseline) for variant in variants]
    result: dict[str, Any] = {
        "options": {"calls": opts.calls, "runs": opts.runs, "warmup": opts.warmup},
        "results": rows,
        "ratios": {row["variant"]: row["ratio_vs_direct"] for row in rows},
        "environment": environment(PACKAGES),
    }
    result["summary"] = summary_line(result)
    return result


def render_table(result: dict[str, Any]) -> str:
    """Return the timing table as plain text."""
    opts = result["options"]
    body = [
        [
            row["variant"],
            row["label"],
            f"{row['per_call_ms_median']:.3f}",
            f"{row['per_call_ms_p90']:.3f}",
            f"{row['ratio_vs_direct']:.2f}x",
        ]
        for row in result["results"]
    ]
    header = ["variant", "what is timed", "ms/call median", "ms/call p90", "vs direct"]
    agents = [
        f"  {row['variant']}: run of {opts['calls']} calls {row['run_ms_median']:.1f} ms,"
        f" run of none {row['empty_run_ms_median']:.1f} ms"
        for row in result["results"]
        if "run_ms_median" in row
    ]
    return "\n".join(
        [
            f"Per-call cost of {TOOL} on goalgraph's MCP server (stdio, kept sessions, scripted"
            " model: no model time)",
            f"N={opts['calls']} calls per batch or agent run, {opts['runs']} interleaved"
            f" repetitions (+{opts['warmup']} warm-up); agents: (T_N - T_0) / N.",
            "",
            *text_table(header, body, left={0, 1}),
            "",
            "vs direct: median over repetitions of the per-call ratio to direct in the same one.",
            "Agent run medians:",
            *agents,
        ]
    )


def sample_progress(done: int, total: int, label: str) -> None:
    """Report ``done`` of ``total`` samples on stderr."""
    stderr_progress(done, total, label, unit="sample")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line into ``Options``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="tool calls per batch or run, N (default 50)")
    parser.add_argument("--runs", type=int, help="measured repetitions (default 30)")
    parser.add_argument("--warmup", type=int, help="dropped warm-up repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="a small run, for tests")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    defaults = (10, 3, 1) if args.quick else (50, 30, 3)
    calls, runs, warmup = (
        default if value is None else value
        for value, default in zip((args.calls, args.runs, args.warmup), defaults, strict=True)
    )
    if calls < 1 or runs < 1 or warmup < 0:
        parser.error("--calls and --runs must be at least 1, --warmup at least 0")
    return Options(calls, runs, warmup, args.json, not args.no_progress)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print and return the result."""
    opts = parse_args(argv)
    result = asyncio.run(run_benchmark(opts, sample_progress if opts.progress else None))
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_table(result))
        print()
        print(result["summary"])
    return result


if __name__ == "__main__":
    main()
