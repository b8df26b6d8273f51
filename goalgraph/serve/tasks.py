"""Background tasks: each runs one goal on the shared ``Agent`` as an asyncio task.

A task's id is its run's LangGraph thread id, so the checkpoint is the task's state. Events are
kept in memory per task so that event streams can replay them before following the live run.

With a ``TaskRegistry`` every status change is also written to SQLite, and ``recover`` brings the
stored tasks back after a restart: runs that were under way continue from their checkpoints (or
start again from their goals when they had none yet), paused ones wait for approval again, and a
task that cannot be brought back is marked ``failed`` with the reason. Events from before the
restart are not kept; a recovered task's event stream starts at the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from goalgraph.agent import Agent, RunResult, has_work_left
from goalgraph.events import AgentEvent
from goalgraph.serve.registry import TaskRecord, TaskRegistry

__all__ = ["ACTIVE", "Task", "TaskConflict", "TaskManager", "TaskStatus", "task_summary"]

log = logging.getLogger(__name__)

TaskStatus = Literal[
    "queued", "running", "awaiting_approval", "done", "failed", "stopped_limit", "cancelled"
]
ACTIVE: frozenset[str] = frozenset({"queued", "running"})
"""Statuses in which a background run is under way (or about to start)."""
_STATUSES: frozenset[str] = frozenset(get_args(TaskStatus))


class TaskConflict(RuntimeError):
    """The task is not in a state that allows the request (answered with 409)."""


@dataclass
class Task:
    """One goal run by the server.

    Attributes:
        id: The task id, which is also the run's thread id.
        owner: Who created it (a digest of the API key), ``None`` without auth.
        goal: The goal text.
        status: ``queued``, ``running``, ``awaiting_approval``, ``done``, ``failed``,
            ``stopped_limit`` or ``cancelled``.
        message: Why the task is in its status, in words.
        result: The last ``RunResult`` (after a pause or the end).
        events: Every event so far, in order.
        created_at: Unix time of creation.
        updated_at: Unix time of the last change.
    """

    id: str
    owner: str | None
    goal: str
    status: TaskStatus = "queued"
    message: str = ""
    result: RunResult | None = None
    events: list[AgentEvent] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)


class TaskManager:
    """Starts, resumes, cancels and follows the tasks of one ``Agent``.

    Must be used from the event loop that runs the server.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        max_concurrent: int | None = None,
        registry: TaskRegistry | None = None,
    ) -> None:
        """Manage tasks on ``agent``; at most ``max_concurrent`` run at once (others queue).

        Args:
            agent: The agent every task runs on.
            max_concurrent: Most tasks running at once; others wait as ``queued``.
            registry: Where every status change is stored, so ``recover`` can bring tasks back
                after a restart; ``None`` keeps tasks in memory only.
        """
        self.agent = agent
        self.registry = registry
        self._tasks: dict[str, Task] = {}
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._wakers: set[asyncio.Task[None]] = set()  # Strong references until they ran.

    def get(self, task_id: str, owner: str | None) -> Task | None:
        """Return the task if it exists and belongs to ``owner``, else ``None``."""
        task = self._tasks.get(task_id)
        return task if task is not None and task.owner == owner else None

    def list(self, owner: str | None) -> list[Task]:
        """Return ``owner``'s tasks, oldest first."""
        return [task for task in self._tasks.values() if task.owner == owner]

    def create(self, goal: str, owner: str | None) -> Task:
        """Create a task for ``goal`` and start running it in the background."""
        task = Task(id=uuid.uuid4().hex, owner=owner, goal=goal)
        if self.registry is not None:  # Stored before the client hears of it; raises if it fails.
            self.registry.save(_record(task))
        self._tasks[task.id] = task
        self._start(task, self.agent.astream(goal, thread_id=task.id))
        return task

    def decide(self, task: Task, *, approve: bool, reason: str = "") -> None:
        """Answer a task's approval request and resume its run in the background.

        Raises:
            TaskConflict: if the task is not awaiting approval.
        """
        if task.status != "awaiting_approval" or _busy(task):
            raise TaskConflict(f"task {task.id} is {task.status}, not awaiting approval")
        events = self.agent.astream_resume(task.id, approve=approve, reason=reason)
        self._set(task, "queued", "resuming after the decision")
        self._start(task, events)

    async def cancel(self, task: Task) -> None:
        """Stop the task's run (its checkpoint stays) and mark it ``cancelled``.

        Raises:
            TaskConflict: if the task has already ended.
        """
        if task.status not in ACTIVE and task.status != "awaiting_approval":
            raise TaskConflict(f"task {task.id} is {task.status} and cannot be cancelled")
        runner = task.runner
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        task.events.append(
            AgentEvent("end", "", {"status": "cancelled", "message": "cancelled by the client"})
        )
        self._set(task, "cancelled", "cancelled by the client")
        await self._notify(task)

    async def follow(self, task: Task) -> AsyncIterator[AgentEvent]:
        """Yield the task's events so far, then live ones until its run stops or pauses."""
        index = 0
        while True:
            async with task.changed:
                while index >= len(task.events) and (task.status in ACTIVE or _busy(task)):
                    await task.changed.wait()
                batch = task.events[index:]
                index += len(batch)
                finished = task.status not in ACTIVE and not _busy(task)
            for event in batch:
                yield event
            if finished and index >= len(task.events):
                return

    async def recover(self) -> dict[str, int]:
        """Bring back the registry's tasks after a (re)start; call once, before serving.

        * ``queued``/``running``: the run continues from its last checkpoint; one without a
          checkpoint yet starts again from its goal; one whose run had already ended (the crash
          came before its status was stored) takes the status the checkpoint holds.
        * ``awaiting_approval``: waits for a decision again (its pending call is read back).
        * Ended tasks come back as they were, with only an ``end`` event.
        * Any task that cannot be brought back is marked ``failed`` with the reason.

        Returns:
            How many tasks were ``resumed``, ``restarted`` (from the goal), put back
            ``awaiting_approval``, ``ended`` (already over) or ``failed`` (could not be resumed).
        """
        counts: Counter[str] = Counter()
        if self.registry is None:
            return {}
        for record in self.registry.load():
            if record.id in self._tasks:
                continue
            status = record.status if record.status in _STATUSES else "failed"
            task = Task(
                id=record.id,
                owner=record.owner,
                goal=record.goal,
                status=cast(TaskStatus, status),
                message=record.message,
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
            self._tasks[task.id] = task
            if record.status not in _STATUSES:
                outcome = "failed"
                self._end(task, "failed", f"unknown stored status {record.status!r}")
            elif status in ACTIVE or status == "awaiting_approval":
                try:
                    outcome = await self._recover(task, was=status)
                except Exception as exc:
                    log.warning("task %s could not be resumed", task.id, exc_info=True)
                    outcome = "failed"
                    reason = f"could not be resumed after a server restart: {type(exc).__name__}"
                    self._end(task, "failed", f"{reason}: {exc}")
            else:
                outcome = "ended"
                task.events.append(
                    AgentEvent("end", "", {"status": task.status, "message": task.message})
                )
            counts[outcome] += 1
        if counts:
            log.info("recovered tasks: %s", dict(counts))
        return dict(counts)

    async def aclose(self) -> None:
        """Cancel every run still under way."""
        for task in list(self._tasks.values()):
            if task.runner is not None and not task.runner.done():
                task.runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task.runner

    # ----- internals -------------------------------------------------------------------------

    def _start(self, task: Task, events: AsyncIterator[AgentEvent]) -> None:
        task.runner = asyncio.get_running_loop().create_task(
            self._run(task, events), name=f"goalgraph-task-{task.id}"
        )

    async def _run(self, task: Task, events: AsyncIterator[AgentEvent]) -> None:
        try:
            if self._slots is None:
                await self._consume(task, events)
            else:
                async with self._slots:
                    await self._consume(task, events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # The agent reports run errors itself; this is a bad resume.
            log.warning("task %s failed", task.id, exc_info=True)
            self._set(task, "failed", f"{type(exc).__name__}: {exc}")
        finally:
            # Followers wait until the runner is done: wake them once it is (on the next turn).
            waker = asyncio.get_running_loop().create_task(self._notify(task))
            self._wakers.add(waker)
            waker.add_done_callback(self._wakers.discard)

    async def _consume(self, task: Task, events: AsyncIterator[AgentEvent]) -> None:
        self._set(task, "running", "")
        await self._notify(task)
        async for event in events:
            task.events.append(event)
            if event.kind == "end" and isinstance(event.result, RunResult):
                task.result = event.result
                self._set(task, event.result.status, event.result.message)
            await self._notify(task)

    async def _recover(self, task: Task, *, was: str) -> str:
        graph = await self.agent.graph()
        snapshot = await graph.aget_state(self.agent.run_config(task.id))
        if not snapshot.values:
            if was == "awaiting_approval":
                self._end(
                    task,
                    "failed",
                    "the server restarted and this task's checkpoint is gone, "
                    "so its pending approval cannot be resumed",
                )
                return "failed"
            self._set(task, "queued", "started again from its goal after a server restart")
            self._start(task, self.agent.astream(task.goal, thread_id=task.id))
            return "restarted"
        if snapshot.interrupts:
            result = await self.agent.aresult(task.id)
            task.result = result
            message = (
                result.message + " (after a server restart)"
                if was == "awaiting_approval"
                else "awaiting approval after a server restart: a decision sent just before it "
                "did not take effect, so approve or deny again"
            )
            task.events.append(
                AgentEvent("approval", "safety_check", result.pending_approval or {})
            )
            task.events.append(AgentEvent("end", "", result.to_dict(), result=result))
            self._set(task, "awaiting_approval", message)
            return "awaiting_approval"
        if not has_work_left(snapshot):  # The run ended; the crash came before it was stored.
            result = await self.agent.aresult(task.id)
            task.result = result
            task.events.append(AgentEvent("end", "", result.to_dict(), result=result))
            self._set(task, result.status, result.message)
            return "ended"
        self._set(task, "queued", "resuming from its last checkpoint after a server restart")
        self._start(task, self.agent.astream_resume(task.id))
        return "resumed"

    def _end(self, task: Task, status: TaskStatus, message: str) -> None:
        task.events.append(AgentEvent("end", "", {"status": status, "message": message}))
        self._set(task, status, message)

    def _set(self, task: Task, status: TaskStatus, message: str) -> None:
        task.status, task.message, task.updated_at = status, message, time.time()
        if self.registry is not None:
            try:
                self.registry.save(_record(task))
            except Exception:  # The task goes on; a restart would find its previous status.
                log.error("could not store task %s as %s", task.id, status, exc_info=True)

    @staticmethod
    async def _notify(task: Task) -> None:
        async with task.changed:
            task.changed.notify_all()


def _busy(task: Task) -> bool:
    return task.runner is not None and not task.runner.done()


def _record(task: Task) -> TaskRecord:
    return TaskRecord(
        id=task.id,
        owner=task.owner,
        goal=task.goal,
        status=task.status,
        message=task.message,
        created_at=task.created_at,
        updated_at=task.updated_at,
    )


def task_summary(task: Task) -> dict[str, Any]:
    """Return the short form of a task used in listings."""
    return {
        "id": task.id,
        "goal": task.goal,
        "status": task.status,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }
