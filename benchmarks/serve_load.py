"""``goalgraph serve`` under load and after a SIGKILL: throughput, latency, lost, cross-wired.

What is measured
----------------
The server runs as a subprocess of this script (``--serve``: the real app and uvicorn over a
``ScriptedChatModel`` whose policy sleeps ``--delay-ms`` per call), with SQLite checkpoints and the
durable task registry in a temporary folder. Each goal is distinct (``compute 17+N``) and the
policy derives the plan, the tool call and the answer (``17+N=<sum>``) from the goal text it is
shown, so a run that got another task's state would answer wrongly: that counts as *cross-wired*.

* Load: ``--tasks`` goals are submitted at once with httpx; the listing is polled until all have
  ended. Latency is from just before the client's ``POST`` to the task's ``updated_at`` when it
  ended (both wall clocks of this machine). Throughput is tasks over the time from the first submit
  to the last end. *Lost* is a submitted task the server no longer lists.
* Kill: ``--tasks`` more goals on a fresh folder, once per kill time (``KILL_POINTS``: a quarter
  and a half of the load run's median latency after the first submit, and the moment the first
  task is listed done, when the rest are writing their last checkpoints); the server gets SIGKILL
  and a new server process on the same files recovers the tasks. Reported: how many the killed
  server had stored as done, how many of the rest the restart finished (``done``), how many ended
  ``failed`` with a reason, how many are *stuck* (still queued or running a minute later) and how
  many are lost; stuck, lost and cross-wired must all be 0, or the script exits 1.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/serve_load.py               # --tasks 50 --delay-ms 20
    .venv/bin/python benchmarks/serve_load.py --json        # machine-readable
    .venv/bin/python benchmarks/serve_load.py --quick       # a few seconds, as the tests run it
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import environment, percentile, text_table

WAIT_S = 60.0
ACTIVE = ("queued", "running")
KILL_POINTS: tuple[float | str, ...] = (0.25, 0.5, "first done")
"""When the server is killed: fractions of the load run's median task latency, or as soon as the
first task is done (the others are then finishing: writing their last checkpoints and results)."""
GOAL = re.compile(r"compute (\d+)\+(\d+)")


# ----- the server (``--serve``) ------------------------------------------------------------------


def serve(port: int, checkpoint: str, delay_s: float, max_concurrent: int | None) -> None:
    """Run the app over a scripted policy model on ``port`` until killed."""
    import uvicorn
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.tools import tool

    from goalgraph import Agent, AgentSpec
    from goalgraph.serve import create_app
    from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
    from goalgraph.tools.calculator import calculate

    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression like 12*(3+4)."""
        return calculate(expression)

    def policy(messages: list[BaseMessage], tools: list[str]) -> AIMessage:
        found = re.search(r"Goal: compute (\d+)\+(\d+)", str(messages[1].content))
        assert found, "the prompt does not show the goal"
        a, b = found.groups()
        if tools == ["Plan"]:
            return plan((f"compute {a}+{b}", "calculator"))
        if tools == ["final_answer"]:
            return final_answer(expected_answer(f"compute {a}+{b}"))
        return tool_call("calculator", expression=f"{a}+{b}")

    spec = AgentSpec(builtin_tools=False, checkpoint_path=checkpoint, final_answer="model")
    model = ScriptedChatModel(policy=policy, delay_s=delay_s)
    app = create_app(
        lambda: Agent(spec, model=model, tools=[calculator]),
        max_concurrent=max_concurrent,
        agent_routes=False,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def expected_answer(goal: str) -> str:
    """The answer the policy gives for ``goal`` (``compute A+B`` -> ``A+B=<sum>``)."""
    found = GOAL.fullmatch(goal)
    assert found, goal
    a, b = map(int, found.groups())
    return f"{a}+{b}={a + b}"


# ----- the client ------------------------------------------------------------------------------


class Server:
    """A ``--serve`` subprocess on a free port over the files in ``folder``."""

    def __init__(self, folder: Path, delay_s: float, max_concurrent: int | None) -> None:
        """Start the server and wait until it answers ``/health``."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        env = {
            **os.environ,
            "GOALGRAPH_CHECKPOINT_PATH": str(folder / "checkpoints.sqlite"),
            "GOALGRAPH_WORKSPACE": str(folder / "workspace"),
            "GOALGRAPH_SAFETY__AUDIT_DIR": str(folder / "audit"),
            "GOALGRAPH_MEMORY__PATH": str(folder / "memory.sqlite"),
            "GOALGRAPH_MEMORY__EMBEDDINGS": "false",
            "GOALGRAPH_MODEL__CACHE__ENABLED": "false",
        }
        command = [
            sys.executable,
            __file__,
            "--serve",
            str(port),
            str(folder / "checkpoints.sqlite"),
        ]
        command += ["--delay-ms", str(delay_s * 1000)]
        if max_concurrent:
            command += ["--max-concurrent", str(max_concurrent)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server gracefully (killing it after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def submit(client: httpx.AsyncClient, goals: list[str]) -> dict[str, tuple[str, float]]:
    """Submit every goal at once; return task id -> (goal, wall time just before its POST)."""

    async def one(goal: str) -> tuple[str, str, float]:
        started = time.time()
        response = await client.post("/v1/tasks", json={"goal": goal})
        response.raise_for_status()
        return str(response.json()["id"]), goal, started

    return {task_id: (goal, t) for task_id, goal, t in await asyncio.gather(*map(one, goals))}


async def settle(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """Poll the listing until ``count`` tasks have ended, or ``WAIT_S``; return the listing."""
    deadline = time.monotonic() + WAIT_S
    while True:
        tasks: list[dict[str, Any]] = (await client.get("/v1/tasks")).json()["tasks"]
        if sum(t["status"] not in ACTIVE for t in tasks) >= count:
            return tasks
        if time.monotonic() > deadline:  # Reported as stuck (still queued/running) or lost.
            print(f"  tasks did not all end within {WAIT_S:g} s", file=sys.stderr)
            return tasks
        await asyncio.sleep(0.01)


async def first_done(client: httpx.AsyncClient) -> None:
    """Return as soon as the listing shows a task done (or after ``WAIT_S``)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        tasks = (await client.get("/v1/tasks")).json()["tasks"]
        if any(t["status"] == "done" for t in tasks):
            return
        await asyncio.sleep(0.005)


async def details(client: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    """Return each task's full body (with its answer)."""
    responses = await asyncio.gather(*(client.get(f"/v1/tasks/{task_id}") for task_id in ids))
    return [response.json() for response in responses]


def cross_wired(body: dict[str, Any], goal: str) -> bool:
    """A task that is done with another goal's answer (or under another goal)."""
    return body["goal"] != goal or (
        body["status"] == "done" and body["answer"] != expected_answer(goal)
    )


@dataclass
class LoadResult:
    """The load run's numbers."""

    tasks: int
    done: int
    failed: int
    stuck: int
    """Still ``queued`` or ``running`` when the wait ended."""
    lost: int
    cross_wired: int
    seconds: float
    throughput: float
    p50_s: float
    p95_s: float


@dataclass
class KillResult:
    """One kill run's numbers."""

    kill_at: str
    """When the kill was planned: after some seconds, or ``first done``."""
    killed_after_s: float
    tasks: int
    done_before_kill: int
    unfinished_at_kill: int
    resumed_to_done: int
    failed_with_reason: int
    failed_without_reason: int
    stuck: int
    """Still ``queued`` or ``running`` when the wait after the restart ended."""
    lost: int
    cross_wired: int
    recovery_seconds: float
    not_done: dict[str, int]
    """Each distinct ``status: message`` of the tasks that did not end ``done``, with a count."""


async def load_run(args: argparse.Namespace, folder: Path) -> LoadResult:
    """Submit ``args.tasks`` goals at once and wait for all of them."""
    server = Server(folder, args.delay_ms / 1000, args.max_concurrent)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            goals = [f"compute 17+{n}" for n in range(args.tasks)]
            first = time.time()
            submitted = await submit(client, goals)
            listed = await settle(client, len(submitted))
            bodies = await details(client, [t["id"] for t in listed if t["id"] in submitted])
    finally:
        server.stop()
    by_id = {body["id"]: body for body in bodies}
    ended = {i for i, body in by_id.items() if body["status"] not in ACTIVE}
    latencies = [by_id[i]["updated_at"] - t for i, (_, t) in submitted.items() if i in ended]
    last = max(body["updated_at"] for body in bodies)
    return LoadResult(
        tasks=len(goals),
        done=sum(body["status"] == "done" for body in bodies),
        failed=sum(body["status"] == "failed" for body in bodies),
        stuck=sum(body["status"] in ACTIVE for body in bodies),
        lost=sum(task_id not in by_id for task_id in submitted),
        cross_wired=sum(cross_wired(by_id[i], g) for i, (g, _) in submitted.items() if i in by_id),
        seconds=last - first,
        throughput=len(bodies) / (last - first),
        p50_s=percentile(latencies, 50),
        p95_s=percentile(latencies, 95),
    )


async def kill_run(args: argparse.Namespace, folder: Path, kill_at: float | str) -> KillResult:
    """Submit ``args.tasks`` goals, SIGKILL the server at ``kill_at``, restart it, wait.

    ``kill_at`` is seconds after the first submit, or ``"first done"``: as soon as the listing
    shows one task done, when the others are finishing too.
    """
    delay_s = args.delay_ms / 1000
    goals = [f"compute 23+{n}" for n in range(args.tasks)]
    server = Server(folder, delay_s, args.max_concurrent)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            started = time.monotonic()
            submitted = await submit(client, goals)
            if isinstance(kill_at, str):
                await first_done(client)
            else:
                await asyncio.sleep(max(0.0, started + kill_at - time.monotonic()))
            killed_after = time.monotonic() - started
            server.kill()
    finally:
        server.stop()
    # What the killed server had durably finished: its task registry, read between the runs.
    registry = folder / "checkpoints.sqlite.tasks.sqlite"
    with sqlite3.connect(registry) as conn:
        stored = dict(conn.execute("SELECT id, status FROM tasks").fetchall())
    done_before = sum(stored.get(task_id) == "done" for task_id in submitted)
    restarted_at = time.monotonic()
    server = Server(folder, delay_s, args.max_concurrent)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            listed = await settle(client, len(submitted))
            bodies = await details(client, [t["id"] for t in listed])
    finally:
        server.stop()
    recovery = time.monotonic() - restarted_at
    by_id = {body["id"]: body for body in bodies if body["id"] in submitted}
    failed = [b for b in by_id.values() if b["status"] == "failed"]
    done = sum(b["status"] == "done" for b in by_id.values())
    return KillResult(
        kill_at=kill_at if isinstance(kill_at, str) else f"{kill_at:.2f} s",
        killed_after_s=killed_after,
        tasks=len(goals),
        done_before_kill=done_before,
        unfinished_at_kill=len(goals) - done_before,
        resumed_to_done=done - done_before,
        failed_with_reason=sum(bool(b["message"]) for b in failed),
        failed_without_reason=sum(not b["message"] for b in failed),
        stuck=sum(b["status"] in ACTIVE for b in by_id.values()),
        lost=sum(task_id not in by_id for task_id in submitted),
        cross_wired=sum(cross_wired(by_id[i], g) for i, (g, _) in submitted.items() if i in by_id),
        recovery_seconds=recovery,
        not_done=dict(
            Counter(
                f"{b['status']}: {b['message']}" for b in by_id.values() if b["status"] != "done"
            )
        ),
    )


def print_tables(load: LoadResult, kills: list[KillResult], args: argparse.Namespace) -> None:
    """Print the load run and the kill runs as plain-text tables."""
    print(
        f"goalgraph serve: {args.tasks} tasks submitted at once, scripted model "
        f"{args.delay_ms:g} ms per call (3 calls a task), max_concurrent="
        f"{args.max_concurrent or 'unlimited'}"
    )
    header = ["tasks", "done", "failed", "stuck", "lost", "cross-wired"]
    header += ["tasks/s", "p50 s", "p95 s"]
    row = [load.tasks, load.done, load.failed, load.stuck, load.lost, load.cross_wired]
    body = [[*map(str, row), f"{load.throughput:.1f}", f"{load.p50_s:.3f}", f"{load.p95_s:.3f}"]]
    print("\n".join(text_table(header, body, left=set())))
    print()
    print("SIGKILL mid-run, then a new server process on the same files (one run per kill time)")
    header = [
        "kill at",
        "killed after s",
        "done before kill",
        "unfinished at kill",
        "resumed to done",
        "failed (reason)",
        "failed (no reason)",
        "stuck",
        "lost",
        "cross-wired",
        "recovery s",
    ]
    body = [
        [
            k.kill_at,
            f"{k.killed_after_s:.2f}",
            *map(
                str,
                [
                    k.done_before_kill,
                    k.unfinished_at_kill,
                    k.resumed_to_done,
                    k.failed_with_reason,
                    k.failed_without_reason,
                    k.stuck,
                    k.lost,
                    k.cross_wired,
                ],
            ),
            f"{k.recovery_seconds:.2f}",
        ]
        for k in kills
    ]
    print("\n".join(text_table(header, body, left=set())))
    for k in kills:
        for reason, count in k.not_done.items():
            print(f"  kill at {k.kill_at}: {count} x {reason}")


async def main_async(args: argparse.Namespace) -> tuple[LoadResult, list[KillResult]]:
    """Run the load measurement, then one kill run per point of ``KILL_POINTS``."""
    with tempfile.TemporaryDirectory() as folder:
        load = await load_run(args, Path(folder))
    kills = []
    for point in KILL_POINTS:
        kill_at = point if isinstance(point, str) else load.p50_s * point
        with tempfile.TemporaryDirectory() as folder:
            kills.append(await kill_run(args, Path(folder), kill_at))
    return load, kills


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or, with ``--serve``, the server)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="model time per call")
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--quick", action="store_true", help="10 tasks, for the smoke test")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "CHECKPOINT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.delay_ms / 1000, args.max_concurrent)
        return 0
    if args.quick:
        args.tasks = 10
    load, kills = asyncio.run(main_async(args))
    packages = ["fastapi", "uvicorn", "httpx", "langgraph"]
    if args.json:
        out = {"load": asdict(load), "kills": [asdict(k) for k in kills]}
        print(json.dumps({**out, "environment": environment(packages)}, indent=2))
    else:
        print_tables(load, kills, args)
        print()
        print(json.dumps(environment(packages)))
    ok = all(r.lost == 0 and r.cross_wired == 0 and r.stuck == 0 for r in [load, *kills])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
