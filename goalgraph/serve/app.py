"""The FastAPI app of ``goalgraph serve``: health, the task API (``/v1/tasks``) and its events.

Endpoints (all under ``/v1`` need an API key when keys are configured):

* ``GET /health``: liveness, no auth.
* ``POST /v1/tasks`` ``{"goal": ...}``: start a task (202).
* ``GET /v1/tasks``, ``GET /v1/tasks/{id}``: the caller's tasks; one task with its plan.
* ``POST /v1/tasks/{id}/approve`` and ``/deny`` ``{"reason": ...}``: decide a pending approval.
* ``DELETE /v1/tasks/{id}``: cancel a task.
* ``GET /v1/tasks/{id}/events``: the task's events as server-sent events.
* ``/agent/invoke``, ``/agent/stream``, ``/agent/playground/``: the graph through LangServe.

The agent may be a ``goalgraph.teams.Team`` (``goalgraph serve --team team.yaml``): every route
works the same, a task's plan steps name their ``agent``, its detail adds each member's ``runs``
(and a debate's ``winner``), its events carry the ``agent`` that acted, and a pending approval names
the member whose call waits.

Tasks are kept in a SQLite registry (``goalgraph.serve.registry``) beside the checkpoints, and the
app brings them back at startup (``TaskManager.recover``): a restart or a crash loses no task.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from goalgraph.agent import Agent
from goalgraph.paths import data_dir
from goalgraph.serve.auth import KeyChecker
from goalgraph.serve.registry import TaskRegistry, registry_path_for
from goalgraph.serve.routes import add_agent_routes
from goalgraph.serve.tasks import Task, TaskConflict, TaskManager, task_summary

__all__ = ["Decision", "NewTask", "create_app"]

log = logging.getLogger(__name__)


class NewTask(BaseModel):
    """The body of ``POST /v1/tasks``."""

    goal: str = Field(min_length=1, description="What the agent should achieve.")


class Decision(BaseModel):
    """The optional body of ``/approve`` and ``/deny``."""

    reason: str = Field(default="", description="A note for the agent with the decision.")


def create_app(
    agent: Agent | Callable[[], Agent],
    *,
    api_keys: Collection[str] | None = None,
    max_concurrent: int | None = None,
    agent_routes: bool = True,
    registry_path: str | Path | None = None,
    durable_tasks: bool = True,
) -> FastAPI:
    """Build the app over one agent (or team); the app opens it at startup and closes it at
    shutdown.

    Args:
        agent: The agent or ``Team``, or a function that builds it at startup (on the server's
            loop).
        api_keys: Keys accepted on ``/v1`` routes; ``None`` or empty turns auth off.
        max_concurrent: Most tasks running at once; others wait as ``queued``.
        agent_routes: Also serve the graph through LangServe at ``/agent`` (invoke, stream,
            playground); see ``goalgraph.serve.routes``.
        registry_path: The SQLite task registry; by default ``<checkpoint file>.tasks.sqlite``
            beside the SQLite checkpoints, or ``<data dir>/tasks.sqlite`` with ``checkpoint_url``.
        durable_tasks: Keep tasks in the registry and bring them back at startup; ``False``
            keeps them in memory only (a restart forgets them).

    Returns:
        The FastAPI application, to serve with uvicorn.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = agent() if callable(agent) and not isinstance(agent, Agent) else agent
        await built.graph()  # Opens the checkpointer once, before concurrent runs race to it.
        registry = TaskRegistry(_registry_path(built, registry_path)) if durable_tasks else None
        try:
            app.state.tasks = TaskManager(built, max_concurrent=max_concurrent, registry=registry)
            await app.state.tasks.recover()
            try:
                yield
            finally:
                await app.state.tasks.aclose()
        finally:
            if registry is not None:
                registry.close()
            await built.aclose()

    app = FastAPI(
        title="goalgraph", summary="A goal-driven agent as a task API.", lifespan=lifespan
    )
    app.state.keys = KeyChecker(api_keys)

    @app.exception_handler(TaskConflict)
    async def _conflict(_: Request, exc: TaskConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: always ``{"status": "ok"}`` while the server runs."""
        return {"status": "ok"}

    router = APIRouter(prefix="/v1", dependencies=[Depends(_owner)])

    @router.post("/tasks", status_code=202)
    async def create_task(body: NewTask, owner: Owner, tasks: Manager) -> dict[str, Any]:
        """Start running a goal in the background; poll or stream the task it returns."""
        task = tasks.create(body.goal, owner)
        return {"id": task.id, "status": task.status}

    @router.get("/tasks")
    async def list_tasks(owner: Owner, tasks: Manager) -> dict[str, Any]:
        """List the caller's tasks, oldest first."""
        return {"tasks": [task_summary(task) for task in tasks.list(owner)]}

    @router.get("/tasks/{task_id}")
    async def get_task(task: Owned, tasks: Manager) -> dict[str, Any]:
        """Return a task's status, plan, progress, answer and pending approval."""
        return await _task_detail(task, tasks.agent)

    @router.post("/tasks/{task_id}/approve", status_code=202)
    async def approve(
        task: Owned, tasks: Manager, body: Annotated[Decision | None, Body()] = None
    ) -> dict[str, Any]:
        """Approve the pending tool call and resume the run (409 if nothing awaits approval)."""
        tasks.decide(task, approve=True, reason=(body or Decision()).reason)
        return {"id": task.id, "status": task.status}

    @router.post("/tasks/{task_id}/deny", status_code=202)
    async def deny(
        task: Owned, tasks: Manager, body: Annotated[Decision | None, Body()] = None
    ) -> dict[str, Any]:
        """Deny the pending tool call and resume the run (409 if nothing awaits approval)."""
        tasks.decide(task, approve=False, reason=(body or Decision()).reason)
        return {"id": task.id, "status": task.status}

    @router.delete("/tasks/{task_id}")
    async def cancel(task: Owned, tasks: Manager) -> dict[str, Any]:
        """Cancel a task: its run stops, its checkpoint stays (409 if it already ended)."""
        await tasks.cancel(task)
        return {"id": task.id, "status": task.status}

    @router.get("/tasks/{task_id}/events")
    async def events(task: Owned, tasks: Manager) -> StreamingResponse:
        """Stream the task's events as server-sent events: earlier ones first, then live ones."""

        async def stream() -> AsyncIterator[str]:
            index = 0
            async for event in tasks.follow(task):
                data = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
                yield f"id: {index}\nevent: {event.kind}\ndata: {data}\n\n"
                index += 1

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    app.include_router(router)
    if agent_routes:
        add_agent_routes(app, _owner)
    return app


def _registry_path(agent: Agent, given: str | Path | None) -> Path:
    if given is not None:
        return Path(given)
    if agent.spec.checkpoint_url is None:
        return registry_path_for(agent.spec.resolved_checkpoint_path())
    return data_dir() / "tasks.sqlite"


def _owner(request: Request) -> str | None:
    checker: KeyChecker = request.app.state.keys
    return checker(request)


def _manager(request: Request) -> TaskManager:
    tasks: TaskManager = request.app.state.tasks
    return tasks


Owner = Annotated[str | None, Depends(_owner)]
Manager = Annotated[TaskManager, Depends(_manager)]


def _owned(task_id: str, owner: Owner, tasks: Manager) -> Task:
    task = tasks.get(task_id, owner)
    if task is None:  # Another key's task is "not found" too: existence does not leak.
        raise HTTPException(404, f"no task {task_id!r}")
    return task


Owned = Annotated[Task, Depends(_owned)]


async def _task_detail(task: Task, agent: Agent) -> dict[str, Any]:
    values: dict[str, Any] = {}
    try:
        values = await agent.astate(task.id)
    except Exception:  # A queued task has no checkpoint yet; report what the task knows.
        log.debug("no state for task %s", task.id, exc_info=True)
    plan = list(values.get("plan") or [])
    result = task.result
    team: dict[str, Any] = {}
    if "runs" in values:  # A team: its members' runs; what it used is its shared budget.
        team = {"runs": list(values.get("runs") or []), "winner": values.get("winner")}
    return {
        "id": task.id,
        "goal": task.goal,
        "status": task.status,
        "message": task.message,
        "answer": values.get("answer"),
        "plan": plan,
        "current_step": values.get("current_step"),
        "steps_done": sum(1 for step in plan if step.get("status") == "done"),
        "steps_total": len(plan),
        "counters": values.get("counters") or values.get("budget"),
        "pending_approval": result.pending_approval
        if result is not None and task.status == "awaiting_approval"
        else None,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        **team,
    }
