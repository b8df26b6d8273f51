"""The agent task suite runner and ``goalgraph eval tasks``.

Each task runs through the real agent (the seven-node graph, goalgraph's own MCP server, the
safety layer) in a fresh temporary folder: its own workspace seeded with the task's files, its own
checkpoint file and audit log, and long-term memory off unless the task turns it on, so tasks
cannot leak into each other. A task's own MCP servers start with the agent, with the task's folders
filled into their settings and their state seeded there (``goalgraph.eval.servers``). A task with
``before`` goals runs each of them first, as a separate agent in the same folder, with long-term
memory on (``memory.backend: graph`` unless the task says otherwise), then its own goal. The run is
bounded by ``EVAL_LIMITS`` (a task's ``spec`` may change them) and by a wall-clock guard. When the
run asks for approval, the runner answers with the task's ``approval`` decision. The run's events
are recorded (``goalgraph.eval.records``), the task's check is evaluated against the record, the
workspace and the task folder, and a failed run gets a failure cause (``goalgraph.eval.checks``).
Success is reported per kind and per split (``tuning`` / ``heldout``).

A team task (``team:``) runs the same way with a ``goalgraph.teams.Team`` over the task's team
spec: the same folder layout and limits (the team's ``limits`` bound all its members together),
the same approval answering (an approval asked inside any member), and every call recorded with
the agent that made it. With the scripted model each agent replays its own part of the script.

The model is ``scripted`` (each task's ``script`` replayed by ``ScriptedChatModel``: it tests the
harness, the checks and the graph), ``bundled`` (SmolLM2-135M), or any model folder or GGUF file.
A local model is loaded once and shared by every task; its generation cache is off, so that every
task is really generated and timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from langchain_core.language_models import BaseChatModel

from goalgraph.agent import Agent
from goalgraph.eval.checks import FAILURE_CAUSES, classify_failure, evaluate
from goalgraph.eval.figures import percentile, text_table
from goalgraph.eval.records import TaskRun, record_event
from goalgraph.eval.servers import (
    fill_placeholders,
    run_values,
    seed_server_state,
    server_state_unchanged,
)
from goalgraph.eval.suite import (
    SPLITS,
    SuiteError,
    TaskSpec,
    default_suite_dir,
    load_suite,
    merge_overrides,
    scripted_member_models,
    scripted_model,
    seed_workspace,
)
from goalgraph.events import AgentEvent
from goalgraph.llm.loader import ModelLoadError
from goalgraph.resources import AgentResources
from goalgraph.spec import BUNDLED_MODEL, AgentSpec, SpecError

__all__ = [
    "EVAL_LIMITS",
    "MAX_APPROVALS",
    "SuiteResult",
    "arun_task",
    "default_suites",
    "judge_run",
    "load_model",
    "member_models",
    "prepare_task_folder",
    "print_event",
    "report_progress",
    "run_suite",
    "select_tasks",
    "split_rows",
    "summary_rows",
    "summary_table",
    "task_spec",
    "tasks_command",
]

EVAL_LIMITS: dict[str, Any] = {"max_steps": 10, "max_seconds": 300.0}
"""Limits of every task run unless its ``spec`` says otherwise: fewer steps than the agent's
default (20), so that a lost run ends soon; the time limit is generous, so that a busy machine
slows runs down without failing them."""
MAX_APPROVALS = 5
"""Approval requests the runner answers in one run before it gives up on the run."""
_GUARD_SLACK_S = 60.0

ModelFactory = Callable[[TaskSpec], BaseChatModel]
Progress = Callable[[int, int, TaskRun], None]
EventTrace = Callable[[str, float, AgentEvent], None]
"""Called with a task's id, the seconds since it started, and one of its events."""


def load_model(name: str) -> tuple[str, ModelFactory]:
    """Return a label and a per-task model factory for ``scripted``, ``bundled`` or a model path.

    A local model is loaded here, once (torch and transformers are imported only now), with its
    generation cache off; ``GOALGRAPH_MODEL__*`` environment variables (``THREADS``, ``DTYPE``,
    ``DEVICE``...) apply to it as to any agent.

    Raises:
        ModelLoadError: If the local model cannot be loaded.
    """
    if name == "scripted":
        # A team task's own model is the team's (the orchestrator's plans); see member_models.
        return "scripted", lambda task: scripted_model(
            task.own_script() if task.is_team() else task.all_turns()
        )
    from goalgraph.llm import LocalChatModel  # Heavy: torch and transformers.

    # Through AgentSpec, so that GOALGRAPH_MODEL__* (threads, dtype, device...) applies.
    model_name = BUNDLED_MODEL if name == "bundled" else name
    model_spec = AgentSpec(model={"name": model_name, "cache": {"enabled": False}}).model
    model = LocalChatModel.from_spec(model_spec)
    return name, lambda task: model


def judge_run(task: TaskSpec, run: TaskRun, root: Path, *, plans: bool) -> None:
    """Fill in ``run``'s check failures, success and failure cause, from its record and the
    task folder ``root`` (``plans``: whether the agent plans, so a plan can be the cause)."""
    run.error = run.error or next(
        (f"earlier run: {e['error']}" for e in run.earlier_runs if e["error"]), None
    )
    run.check_failures = evaluate(task.check, run, root / "workspace", task_dir=root)
    if run.error:
        run.check_failures.insert(0, f"the runner stopped on {run.error}")
    run.success = not run.check_failures
    run.failure_cause = classify_failure(
        run,
        needed_tools=task.required_tools(),
        expects_refusal=task.check.expects_refusal(),
        plans=plans,
        state_unchanged=server_state_unchanged(task.server_state, root),
    )


def prepare_task_folder(
    task: TaskSpec, stack: contextlib.ExitStack, *, keep_in: Path | None, prefix: str
) -> tuple[Path, AgentSpec]:
    """Lay out a task's folder: its seeded ``workspace``, its servers' state, and its spec.

    Args:
        task: The task.
        stack: Removes the temporary folder when it closes (unless ``keep_in`` is given).
        keep_in: An empty folder to use and keep instead of a temporary one.
        prefix: The temporary folder's name prefix.

    Returns:
        The folder and the task's ``AgentSpec`` in it.
    """
    root = keep_in or Path(
        stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{prefix}-{task.id}-"))
    )
    workspace = root / "workspace"
    workspace.mkdir()
    seed_workspace(task, workspace)
    seed_server_state(task.server_state, root)
    return root, task_spec(task, root)


def task_spec(task: TaskSpec, root: Path) -> AgentSpec:
    """Return the agent spec of one task run whose files live under ``root``.

    Long-term memory is off, except for a task with ``before`` runs (``graph``); the task's
    ``spec`` may say otherwise. A team task's team spec (its agents, pattern, limits and safety)
    is merged over these defaults, and the task's ``spec`` over it. Placeholders in its servers'
    settings are filled in for ``root``.

    Raises:
        SpecError: If the task's ``spec`` overrides are invalid.
    """
    base: dict[str, Any] = {
        "workspace": str(root / "workspace"),
        "checkpoint_path": str(root / "checkpoints.sqlite"),
        "limits": dict(EVAL_LIMITS),
        "safety": {"audit_dir": str(root / "audit")},
        "memory": {
            "backend": "graph" if task.before else "none",
            "path": str(root / "memory.sqlite"),
        },
    }
    if isinstance(task.team, dict):
        base = merge_overrides(base, task.team)
    try:
        overrides = fill_placeholders(task.spec, run_values(root))
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    return AgentSpec(**merge_overrides(base, overrides))


def _check_specs(tasks: Sequence[TaskSpec]) -> None:
    """Raise ``SuiteError`` naming the first task whose spec overrides are invalid."""
    for task in tasks:
        try:
            task_spec(task, Path(tempfile.gettempdir()) / "goalgraph-eval-check")
        except SpecError as exc:
            raise SuiteError(f"task {task.id!r}: {exc}") from None


async def arun_task(
    task: TaskSpec,
    model: BaseChatModel,
    label: str,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    keep_in: Path | None = None,
    on_event: EventTrace | None = None,
) -> TaskRun:
    """Run one task in a fresh temporary folder and return its checked record.

    Args:
        task: The task.
        model: The chat model the agent thinks with; of a team task, the team's and every
            member's.
        label: The model's name in the record.
        models: A team task's chat models by agent name, over ``model`` (the scripted model
            gives each agent its own script: ``member_models``).
        keep_in: An empty folder to run in and keep (workspace, checkpoints, audit log, memory,
            server state) for inspection; by default a temporary folder, removed afterwards.
        on_event: Called with each event of the task's runs (its ``before`` goals' too) as it
            happens, with the task's id and the seconds since the task started.
    """
    task_started = time.perf_counter()

    def seen(event: AgentEvent) -> None:
        if on_event is not None:
            on_event(task.id, time.perf_counter() - task_started, event)

    run = TaskRun(task_id=task.id, kind=task.kind, model=label, goal=task.goal, split=task.split)
    with contextlib.ExitStack() as stack:
        root, spec = prepare_task_folder(task, stack, keep_in=keep_in, prefix="goalgraph-task")
        guard_s = spec.limits.max_seconds + _GUARD_SLACK_S
        for earlier in task.before:  # Each a new agent: only long-term memory carries over.
            record = TaskRun(task_id=task.id, kind=task.kind, model=label, goal=earlier.goal)
            await _run_goal(earlier.approval, spec, model, record, guard_s, on_event=seen)
            run.earlier_runs.append(_earlier_summary(record))
        started = time.perf_counter()
        await _run_goal(task.approval, spec, model, run, guard_s, models=models, on_event=seen)
        run.wall_s = time.perf_counter() - started
        # The goal as one step (plan_directly) is no plan, so no plan can be the cause. The
        # profile is resolved as the agent resolved it: the model's own rules, then the spec's.
        profile = AgentResources(spec, model=model).profile()
        judge_run(task, run, root, plans=not profile.plan_directly)
    return run


async def _run_goal(
    approval: str,
    spec: AgentSpec,
    model: BaseChatModel,
    run: TaskRun,
    guard_s: float,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    on_event: Callable[[AgentEvent], None] | None = None,
) -> None:
    """Run ``run.goal`` with a new agent (a ``Team`` when ``spec`` declares agents) under the
    wall-clock guard, recording it in ``run`` (and passing each event to ``on_event``).

    A timeout or a crash (even while the agent starts) ends up in ``run``, never raised.
    """
    try:
        async with asyncio.timeout(guard_s):
            await _drive(run.goal, approval, _agent(spec, model, models), run, on_event)
    except TimeoutError:
        run.status = "stopped_limit"
        run.message = f"time limit reached (the runner's wall-clock guard, {guard_s:g} s)"
    except Exception as exc:  # A crash is a result to count, not a reason to stop the suite.
        run.error = f"{type(exc).__name__}: {exc}"


def _agent(
    spec: AgentSpec, model: BaseChatModel, models: Mapping[str, BaseChatModel] | None
) -> Agent:
    if not spec.agents:
        return Agent(spec, model=model)
    from goalgraph.teams import Team

    return Team(spec, model=model, models=models)


def member_models(label: str, task: TaskSpec) -> dict[str, BaseChatModel]:
    """Return a team task's models by agent: with the scripted model, each agent's own script;
    with a real model none (the one model serves the team and every member)."""
    if label != "scripted":
        return {}
    return dict(scripted_member_models(task))


def _earlier_summary(record: TaskRun) -> dict[str, Any]:
    return {
        "goal": record.goal,
        "status": record.status,
        "answer": record.answer,
        "tools": [call.tool for call in record.calls],
        "approvals": record.approvals,
        "error": record.error,
    }


async def _drive(
    goal: str,
    approval: str,
    agent: Agent,
    run: TaskRun,
    on_event: Callable[[AgentEvent], None] | None = None,
) -> None:
    """Run ``goal``, answering approval requests with ``approval``, and record it all."""
    try:
        events = agent.astream(goal)
        while True:
            status, thread_id = "", ""
            async for event in events:
                record_event(run, event)
                if on_event is not None:
                    on_event(event)
                if event.kind == "end" and event.result is not None:
                    status, thread_id = event.result.status, event.result.thread_id
            if status != "awaiting_approval" or run.approvals > MAX_APPROVALS:
                return
            approve = approval == "approve"
            reason = "" if approve else "the task's approver denies this call"
            events = agent.astream_resume(thread_id, approve=approve, reason=reason)
    finally:
        await agent.aclose()


@dataclass
class SuiteResult:
    """The records of one suite run with one model."""

    model: str
    """The model's label."""
    runs: list[TaskRun]
    """One record per task, in suite order."""
    skipped: list[str] = field(default_factory=list)
    """Tasks not run (the scripted model cannot run a task without a script)."""
    wall_s: float = 0.0
    """Seconds the whole suite took, model loading included."""

    def failure_counts(self) -> dict[str, int]:
        """Return how many failed runs each cause explains, in ``FAILURE_CAUSES`` order."""
        counts = Counter(run.failure_cause for run in self.runs if run.failure_cause)
        return {cause: counts[cause] for cause in FAILURE_CAUSES if counts[cause]}

    def to_dict(self) -> dict[str, Any]:
        """Return the summary, the failure counts and every record, JSON-serialisable."""
        return {
            "model": self.model,
            "wall_s": round(self.wall_s, 2),
            "summary": summary_rows(self.runs),
            "splits": split_rows(self.runs),
            "failure_causes": self.failure_counts(),
            "skipped": self.skipped,
            "runs": [run.to_dict() for run in self.runs],
        }


def run_suite(
    tasks: Sequence[TaskSpec],
    model: str,
    *,
    progress: Progress | None = None,
    concurrency: int = 1,
    on_event: EventTrace | None = None,
) -> SuiteResult:
    """Run ``tasks`` with ``model`` and return the records, in suite order.

    Args:
        tasks: The tasks (``load_suite``).
        model: ``scripted``, ``bundled``, or a model folder or GGUF file.
        progress: Called after each task with (done, total, record).
        concurrency: Tasks run at once; only the scripted model may run more than one (a
            local model is one shared model on the CPU). Wall times then include contention.
        on_event: Called with each event as it happens (``arun_task``); ``print_event``
            prints it.

    Raises:
        SuiteError: If a task's spec overrides are invalid (before anything runs).
        ValueError: If ``concurrency`` is above 1 for a real model.
    """
    if concurrency < 1 or (concurrency > 1 and model != "scripted"):
        raise ValueError("concurrency above 1 is for the scripted model only")
    _check_specs(tasks)
    started = time.perf_counter()
    label, factory = load_model(model)
    runnable = [task for task in tasks if label != "scripted" or task.scripted()]
    skipped = [task.id for task in tasks if task not in runnable]

    async def run_all() -> list[TaskRun]:
        slots = asyncio.Semaphore(concurrency)
        finished = 0

        async def run_one(task: TaskSpec) -> TaskRun:
            nonlocal finished
            async with slots:
                run = await arun_task(
                    task,
                    factory(task),
                    label,
                    models=member_models(label, task),
                    on_event=on_event,
                )
            finished += 1
            if progress is not None:
                progress(finished, len(runnable), run)
            return run

        return list(await asyncio.gather(*(run_one(task) for task in runnable)))

    runs = asyncio.run(run_all())
    return SuiteResult(label, runs, skipped, time.perf_counter() - started)


def _summary_row(kind: str, runs: Sequence[TaskRun]) -> dict[str, Any]:
    total_calls = sum(run.calls_total for run in runs)
    walls = [run.wall_s for run in runs]
    return {
        "kind": kind,
        "tasks": len(runs),
        "succeeded": sum(run.success for run in runs),
        "success_rate": sum(run.success for run in runs) / len(runs),
        "mean_think_steps": statistics.fmean(run.think_steps for run in runs),
        "calls_total": total_calls,
        "calls_valid": sum(run.calls_valid for run in runs),
        "validity": sum(run.calls_valid for run in runs) / total_calls if total_calls else None,
        "wall_p50_s": percentile(walls, 50),
        "wall_p95_s": percentile(walls, 95),
    }


def summary_rows(runs: Sequence[TaskRun]) -> list[dict[str, Any]]:
    """Return one summary row per kind (in first-seen order) and an ``overall`` row.

    Tool-call validity is pooled: valid calls over all calls of the kind's runs.
    """
    if not runs:
        return []
    kinds = list(dict.fromkeys(run.kind for run in runs))
    rows = [_summary_row(kind, [run for run in runs if run.kind == kind]) for kind in kinds]
    return [*rows, _summary_row("overall", runs)]


def split_rows(runs: Sequence[TaskRun]) -> list[dict[str, Any]]:
    """Return one row per split that has runs (``tuning``, then ``heldout``): tasks, successes."""
    rows = []
    for split in SPLITS:
        chosen = [run for run in runs if run.split == split]
        if chosen:
            succeeded = sum(run.success for run in chosen)
            rows.append(
                {
                    "split": split,
                    "tasks": len(chosen),
                    "succeeded": succeeded,
                    "success_rate": succeeded / len(chosen),
                }
            )
    return rows


def summary_table(result: SuiteResult) -> list[str]:
    """Return the per-kind table, the per-split table and the failure causes as plain text."""
    header = ["kind", "tasks", "success", "think steps", "valid calls", "wall p50", "wall p95"]
    body = [
        [
            row["kind"],
            str(row["tasks"]),
            f"{row['succeeded']}/{row['tasks']} ({row['success_rate']:.0%})",
            f"{row['mean_think_steps']:.1f}",
            "-"
            if row["validity"] is None
            else f"{row['calls_valid']}/{row['calls_total']} ({row['validity']:.0%})",
            f"{row['wall_p50_s']:.1f} s",
            f"{row['wall_p95_s']:.1f} s",
        ]
        for row in summary_rows(result.runs)
    ]
    lines = [f"model: {result.model}", *text_table(header, body, left={0})]
    splits = [
        [
            row["split"],
            str(row["tasks"]),
            f"{row['succeeded']}/{row['tasks']} ({row['success_rate']:.0%})",
        ]
        for row in split_rows(result.runs)
    ]
    if splits:
        lines += ["", *text_table(["split", "tasks", "success"], splits, left={0})]
    counts = result.failure_counts()
    if counts:
        lines += ["", "failure causes:"]
        lines += [f"  {cause:<18}{n:>3}  {FAILURE_CAUSES[cause]}" for cause, n in counts.items()]
    if result.skipped:
        lines.append(f"skipped (no script): {', '.join(result.skipped)}")
    return lines


def report_progress(done: int, total: int, run: TaskRun) -> None:
    """Print one finished task on stderr: ``[3/38] task-id: ok   done, 12.3 s``."""
    verdict = "ok  " if run.success else f"FAIL ({run.failure_cause})"
    print(
        f"[{done}/{total}] {run.task_id}: {verdict} {run.status}, {run.wall_s:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def print_event(task_id: str, elapsed_s: float, event: AgentEvent) -> None:
    """Print one event of a task on stderr, each line led by the seconds since the task started
    and the task's id: ``  12.3 shop-ship-ada | tool call: search_products({...})``."""
    lead = f"{elapsed_s:7.1f} {task_id} |"
    for line in event.describe().splitlines():
        print(f"{lead} {line}", file=sys.stderr, flush=True)


def tasks_command(
    suites: Annotated[
        list[Path] | None,
        typer.Argument(help="Suite YAML files or folders (default: benchmarks/tasks/)."),
    ] = None,
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="scripted, bundled, or a model folder or GGUF file."),
    ] = "bundled",
    task_ids: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="Run only this task (repeatable).")
    ] = None,
    kinds: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Run only this kind (repeatable).")
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="Run only the tuning or the heldout tasks, or all.")
    ] = "all",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write every record as JSON here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the results, as JSON.")] = (
        False
    ),
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Also print every event (plan, call, verdict, observation, step) on stderr, "
            "with the seconds since its task started.",
        ),
    ] = False,
) -> None:
    """Run the agent task suite and print success, steps, tool-call validity and wall time."""
    try:
        tasks = select_tasks(
            load_suite(suites or default_suites()), task_ids=task_ids, kinds=kinds, split=split
        )
        result = run_suite(
            tasks, model, progress=report_progress, on_event=print_event if trace else None
        )
    except (SuiteError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    data = result.to_dict()
    if output is not None:
        output.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print("\n".join(summary_table(result)))


def default_suites() -> list[Path]:
    """Return the suite folder of the source checkout (``benchmarks/tasks/``).

    Raises:
        SuiteError: This goalgraph has no such folder (an installed wheel).
    """
    folder = default_suite_dir()
    if folder is None:
        raise SuiteError(
            "no suite given and no benchmarks/tasks/ folder found next to this goalgraph "
            "(it ships with the source checkout): pass suite files, "
            "e.g. goalgraph eval tasks my_suite.yaml"
        )
    return [folder]


def select_tasks(
    tasks: Sequence[TaskSpec],
    *,
    task_ids: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    split: str = "all",
) -> list[TaskSpec]:
    """Return the tasks with one of ``task_ids``, of one of ``kinds`` and in ``split``.

    Empty filters and ``split="all"`` keep every task.

    Raises:
        SuiteError: If an id is unknown, the split is not ``tuning``, ``heldout`` or ``all``, or
            no task is left.
    """
    if split != "all" and split not in SPLITS:
        raise SuiteError(f"unknown split {split!r}; choose {', '.join(SPLITS)} or all")
    unknown = sorted(set(task_ids or []) - {task.id for task in tasks})
    if unknown:
        raise SuiteError(f"no task with id {', '.join(unknown)} in the suite")
    chosen = [
        task
        for task in tasks
        if (not task_ids or task.id in task_ids)
        and (not kinds or task.kind in kinds)
        and split in ("all", task.split)
    ]
    if not chosen:
        raise SuiteError("no task matches the --task, --kind and --split filters")
    return chosen
