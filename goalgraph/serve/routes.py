"""LangServe routes over the agent's graph, and thread routes for what LangServe cannot carry.

* ``/agent/invoke``, ``/stream``, ``/stream_events``, ``/stream_log``, ``/playground/``: LangServe's
  routes. The graph is looked up on each call (the app builds the agent at startup), through
  ``GraphRunnable``. A run that pauses for approval returns its state with ``pending_approval``.
* ``GET /agent/threads/{id}``: the thread's result (status, plan, answer, pending approval).
* ``POST /agent/threads/{id}/resume`` ``{"approve": true|false, "reason": ...}``: answer the
  pending approval (a ``Command(resume=...)``, which LangServe's ``/invoke`` has no way to send),
  or with no ``approve`` continue a run that was cut off; returns the new result.

A served ``Team`` runs the same way: ``/invoke`` returns the team's output (status, answer and each
member's ``runs``), and a resume answers the approval of whichever member waits.

The run's thread comes from the ``X-Thread-Id`` header or the request config's
``configurable.thread_id`` (a new one otherwise). With API keys, threads are namespaced per key
(``<key digest>-<thread>``), so one key cannot read or continue another key's threads.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import BaseModel, Field

from goalgraph.agent import Agent

__all__ = ["GoalInput", "GraphRunnable", "ResumeInput", "add_agent_routes"]

THREAD_HEADER = "x-thread-id"
_THREAD_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # Fits the audit log's file names.


class GoalInput(BaseModel):
    """The input of ``/agent/invoke`` and ``/agent/stream``."""

    goal: str = Field(description="What the agent should achieve.")


class ResumeInput(BaseModel):
    """The body of ``POST /agent/threads/{id}/resume``."""

    approve: bool | None = Field(
        default=None,
        description="Decide the pending approval; leave out to continue a run that was cut off.",
    )
    reason: str = Field(default="", description="A note for the agent with the decision.")


class GraphRunnable(Runnable[dict[str, Any], dict[str, Any]]):
    """A runnable that forwards to the agent's compiled graph with the agent's run config."""

    def __init__(self, agent: Callable[[], Agent]) -> None:
        """Forward to the graph of ``agent()``, looked up on every call."""
        self._agent = agent

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        """Declare ``thread_id`` so that LangServe accepts it in ``configurable``."""
        return [
            ConfigurableFieldSpec(
                id="thread_id", annotation=str, name="Thread id", default="", is_shared=True
            )
        ]

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Not supported: the server calls ``ainvoke``."""
        raise NotImplementedError("GraphRunnable runs on the server's event loop: use ainvoke")

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Run the graph on ``input`` to its end (or an approval pause); return the state."""
        agent = self._agent()
        graph = await agent.graph()
        run_config = self._config(agent, config)
        result = dict(await graph.ainvoke(_plain(input), run_config))
        interrupts = result.pop("__interrupt__", None)
        if interrupts:  # Interrupt objects do not serialise; the client needs their value.
            # The run's result names the call, and in a team the member whose call it is.
            paused = await agent.aresult(run_config["configurable"]["thread_id"])
            result["pending_approval"] = paused.pending_approval or dict(interrupts[0].value)
        return result

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Not supported: the server calls ``astream``."""
        raise NotImplementedError("GraphRunnable runs on the server's event loop: use astream")

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each node's state update, ``{node: update}``."""
        agent = self._agent()
        graph = await agent.graph()
        async for chunk in graph.astream(
            _plain(input), self._config(agent, config), stream_mode="updates"
        ):
            yield dict(chunk)

    @staticmethod
    def _config(agent: Agent, config: RunnableConfig | None) -> RunnableConfig:
        config = config or {}
        thread_id = str(config.get("configurable", {}).get("thread_id") or uuid.uuid4().hex)
        base = agent.run_config(thread_id)  # The recursion bound, as in Agent.run.
        configurable = {**config.get("configurable", {}), **base["configurable"]}
        return {**config, **base, "configurable": configurable}


def add_agent_routes(app: FastAPI, owner: Callable[..., str | None], path: str = "/agent") -> None:
    """Add LangServe's invoke, stream and playground routes for the app's agent at ``path``.

    Args:
        app: The app from ``create_app`` (its ``state.tasks`` holds the agent after startup).
        owner: The app's caller dependency (API key check); its result namespaces threads.
        path: Where the routes go.
    """
    from langserve import add_routes

    async def per_request(config: dict[str, Any], request: Request) -> dict[str, Any]:
        configurable = dict(config.get("configurable") or {})
        thread = request.headers.get(THREAD_HEADER) or configurable.get("thread_id")
        configurable["thread_id"] = _namespaced(str(thread or uuid.uuid4().hex), owner(request))
        return {**config, "configurable": configurable}

    add_routes(
        app,
        GraphRunnable(lambda: app.state.tasks.agent),
        path=path,
        input_type=GoalInput,
        enabled_endpoints=[
            "invoke",
            "stream",
            "stream_events",
            "stream_log",  # The playground shows runs through it.
            "playground",
            "input_schema",
            "output_schema",
            "config_schema",
        ],
        per_req_config_modifier=per_request,
        dependencies=[Depends(owner)],
    )

    app.include_router(_thread_router(app, owner, path))


def _thread_router(app: FastAPI, owner: Callable[..., str | None], path: str) -> APIRouter:
    router = APIRouter(prefix=f"{path}/threads", dependencies=[Depends(owner)])

    def agent() -> Agent:
        built: Agent = app.state.tasks.agent
        return built

    @router.get("/{thread_id}")
    async def thread_result(thread_id: str, who: str | None = Depends(owner)) -> dict[str, Any]:
        """Return the thread's result: status, plan, answer and any pending approval."""
        namespaced = _namespaced(thread_id, who)
        try:
            result = await agent().aresult(namespaced)
        except ValueError as exc:
            raise HTTPException(404, str(exc).replace(namespaced, thread_id)) from None
        return {**result.to_dict(), "thread_id": thread_id}

    @router.post("/{thread_id}/resume")
    async def resume_thread(
        thread_id: str, body: ResumeInput, who: str | None = Depends(owner)
    ) -> dict[str, Any]:
        """Answer the pending approval (or continue a cut-off run); return the new result."""
        namespaced = _namespaced(thread_id, who)
        try:
            result = await agent().aresume(namespaced, approve=body.approve, reason=body.reason)
        except ValueError as exc:
            message = str(exc).replace(namespaced, thread_id)
            raise HTTPException(404 if message.startswith("no run") else 409, message) from None
        return {**result.to_dict(), "thread_id": thread_id}

    return router


def _namespaced(thread: str, who: str | None) -> str:
    if not _THREAD_ID.match(thread):
        raise HTTPException(400, "a thread id is 1-100 letters, digits, '_', '.' or '-'")
    return f"{who[:16]}-{thread}" if who else thread


def _plain(input: Any) -> Any:
    return input.model_dump() if isinstance(input, BaseModel) else input
