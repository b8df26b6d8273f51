"""The Python API: ``Agent`` with ``run``, ``stream``, ``resume``, ``history`` and time travel.

Every method has an async twin (``arun``, ``astream``, ...). The sync methods run the async ones on
a private event-loop thread that lives as long as the agent, so that MCP sessions and the
checkpoint connection stay open between calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Command

from goalgraph.checkpoint import open_checkpointer
from goalgraph.events import AgentEvent, events_from_update
from goalgraph.graph import build_graph
from goalgraph.memory.backend import MemoryBackend
from goalgraph.resources import AgentResources, ToolSet
from goalgraph.spec import AgentSpec
from goalgraph.state import Counters, Observation, PlanStep, RunStatus

__all__ = ["Agent", "HistoryEntry", "RunResult", "has_work_left"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RunResult:
    """How a run ended (or paused).

    Attributes:
        thread_id: The run's thread; pass it to ``resume`` and ``history``.
        status: ``done``, ``failed``, ``stopped_limit`` or ``awaiting_approval``.
        message: Why, in words.
        answer: The final answer when ``status == "done"``.
        plan: The plan with each step's status and result.
        observations: The most recent tool outcomes.
        counters: Steps, replans, tool calls, blocks and seconds of work.
        pending_approval: The tool call awaiting a decision, when ``awaiting_approval``.
    """

    thread_id: str
    status: RunStatus
    message: str
    answer: str | None = None
    plan: list[PlanStep] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    counters: Counters | None = None
    pending_approval: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict."""
        return {
            "thread_id": self.thread_id,
            "status": self.status,
            "message": self.message,
            "answer": self.answer,
            "plan": self.plan,
            "observations": self.observations,
            "counters": self.counters,
            "pending_approval": self.pending_approval,
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One checkpoint of a thread, newest first in ``Agent.history``.

    Attributes:
        checkpoint_id: Pass to ``Agent.replay`` to continue the run from here (time travel).
        step: LangGraph's superstep number.
        node: The node that wrote this checkpoint (``input`` for the first).
        next: The nodes that run next from here.
        status: The run status stored at this point.
        current_step: The plan step being worked on.
        created_at: ISO timestamp.
    """

    checkpoint_id: str
    step: int
    node: str
    next: tuple[str, ...]
    status: str
    current_step: int | None
    created_at: str | None


class _LoopThread:
    """An event loop on a daemon thread, for running coroutines from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="goalgraph")
        self._thread.start()

    def call(self, awaitable: Awaitable[T]) -> T:
        async def wrapper() -> T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class Agent:
    """A goal-driven agent: plan, think, act through tools, check, reflect, replan, remember.

    Example:
        >>> with Agent() as agent:                               # doctest: +SKIP
        ...     result = agent.run("What is 12*(3+4)?")
        ...     print(result.status, result.answer)
        done 84
    """

    def __init__(
        self,
        spec: AgentSpec | None = None,
        *,
        model: BaseChatModel | None = None,
        tools: Sequence[BaseTool] | ToolSet | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        memory: MemoryBackend | None = None,
        **spec_fields: Any,
    ) -> None:
        """Create an agent; nothing is loaded or started until the first run.

        Args:
            spec: The configuration; when omitted, built from ``spec_fields`` and environment.
            model: A chat model instead of the spec's (for example a ``ScriptedChatModel``), or
                the spec's model as a name (``"qwen2.5-coder-0.5b"``) or a mapping of
                ``ModelSpec`` fields.
            tools: LangChain tools or a ``ToolSet`` instead of the spec's MCP servers.
            checkpointer: A LangGraph checkpointer; by default the spec's ``checkpoint_url``
                (PostgreSQL or SQLite) or else its SQLite file, opened on first use.
            store: A LangGraph store that receives finished runs as episodes.
            memory: A long-term memory backend instead of the spec's (``memory.backend``); the
                caller keeps ownership and closes it. A mapping is the spec's ``memory``.
            **spec_fields: ``AgentSpec`` fields, when ``spec`` is omitted.
        """
        # ``model`` and ``memory`` are also spec fields: a model name or a mapping of model
        # settings (``Agent(model="qwen2.5-coder-0.5b")``) configures the spec's model.
        if isinstance(model, str | Mapping):
            spec_fields["model"] = {"name": model} if isinstance(model, str) else dict(model)
            model = None
        if isinstance(memory, Mapping):
            spec_fields["memory"], memory = dict(memory), None
        if model is not None and not isinstance(model, BaseChatModel):
            raise TypeError(
                f"model must be a LangChain chat model, a model name or model settings, "
                f"not {type(model).__name__}"
            )
        if spec is not None and spec_fields:
            raise TypeError("pass either spec or spec fields, not both")
        self.spec = spec or AgentSpec(**spec_fields)
        self._resources = AgentResources(self.spec, model=model, tools=tools, memory=memory)
        self._checkpointer = checkpointer
        self._checkpointer_stack: AsyncExitStack | None = None  # Closes the one we opened.
        self._store = store
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
        self._loop_lock = threading.Lock()
        self._loop_thread: _LoopThread | None = None

    # ----- async API -------------------------------------------------------------------------

    async def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """Return the compiled, checkpointed graph (opening the checkpointer on first use)."""
        if self._graph is None:
            if self._checkpointer is None:
                stack = AsyncExitStack()
                self._checkpointer = await stack.enter_async_context(open_checkpointer(self.spec))
                self._checkpointer_stack = stack
            self._graph = self._build_graph(self._checkpointer)
        return self._graph

    def _build_graph(
        self, checkpointer: BaseCheckpointSaver[Any]
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """Compile the graph this API drives (a ``Team`` builds its team graph instead)."""
        return build_graph(resources=self._resources, checkpointer=checkpointer, store=self._store)

    async def astream(
        self, goal: str, *, thread_id: str | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Run ``goal`` and yield progress events; the last event has kind ``end``."""
        thread_id = thread_id or uuid.uuid4().hex
        async for event in self._drive({"goal": goal}, thread_id):
            yield event

    async def arun(self, goal: str, *, thread_id: str | None = None) -> RunResult:
        """Run ``goal`` to its end (or to an approval pause) and return the result."""
        thread_id = thread_id or uuid.uuid4().hex
        return await self._last_result(self._drive({"goal": goal}, thread_id), thread_id)

    async def astream_resume(
        self, thread_id: str, *, approve: bool | None = None, reason: str = ""
    ) -> AsyncIterator[AgentEvent]:
        """Continue a paused or interrupted run, yielding events (see ``aresume``)."""
        command = await self._resume_input(thread_id, approve, reason)
        async for event in self._drive(command, thread_id):
            yield event

    async def aresume(
        self, thread_id: str, *, approve: bool | None = None, reason: str = ""
    ) -> RunResult:
        """Continue a run: answer its approval request, or pick up after a crash.

        Args:
            thread_id: The run to continue.
            approve: Required when the run awaits approval: ``True`` runs the tool call,
                ``False`` blocks it (the agent sees the denial and ``reason``).
            reason: An optional note for the agent with the decision.

        Raises:
            ValueError: if the thread is unknown, or ``approve`` does not fit its state.
        """
        return await self._last_result(
            self.astream_resume(thread_id, approve=approve, reason=reason), thread_id
        )

    async def aresult(self, thread_id: str) -> RunResult:
        """Return the current result of a thread without running anything."""
        graph = await self.graph()
        snapshot = await graph.aget_state(self.run_config(thread_id))
        if not snapshot.values:
            raise ValueError(f"no run with thread id {thread_id!r}")
        return self._result(thread_id, snapshot)

    async def ahistory(self, thread_id: str) -> list[HistoryEntry]:
        """Return the thread's checkpoints, newest first."""
        graph = await self.graph()
        snapshots = [snap async for snap in graph.aget_state_history(self.run_config(thread_id))]
        entries = []
        for index, snap in enumerate(snapshots):
            metadata = cast(dict[str, Any], snap.metadata or {})
            parent = snapshots[index + 1] if index + 1 < len(snapshots) else None
            values = snap.values or {}
            entries.append(
                HistoryEntry(
                    checkpoint_id=str(snap.config["configurable"]["checkpoint_id"]),
                    step=int(metadata.get("step", -1)),
                    node=_writer(metadata, parent.next if parent else ()),
                    next=tuple(snap.next),
                    status=str(values.get("status", "")),
                    current_step=values.get("current_step"),
                    created_at=snap.created_at,
                )
            )
        return entries

    async def astate(self, thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        """Return the thread's state values, now or at ``checkpoint_id``."""
        graph = await self.graph()
        snapshot = await graph.aget_state(self.run_config(thread_id, checkpoint_id))
        return dict(snapshot.values or {})

    async def areplay(self, thread_id: str, checkpoint_id: str) -> RunResult:
        """Time travel: continue the thread from an earlier checkpoint, forking its history."""
        graph = await self.graph()
        config = self.run_config(thread_id, checkpoint_id)
        snapshot = await graph.aget_state(config)
        if not snapshot.values:
            raise ValueError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
        return await self._last_result(self._drive(None, thread_id, config=config), thread_id)

    async def aclose(self) -> None:
        """Stop MCP servers and close the checkpoint database."""
        await self._resources.aclose()
        if self._checkpointer_stack is not None:
            stack, self._checkpointer_stack = self._checkpointer_stack, None
            self._checkpointer = None
            self._graph = None
            await stack.aclose()

    async def __aenter__(self) -> Agent:
        """Return the agent."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the agent."""
        await self.aclose()

    # ----- sync API --------------------------------------------------------------------------

    def run(self, goal: str, *, thread_id: str | None = None) -> RunResult:
        """Run ``goal`` to its end (or to an approval pause) and return the result."""
        return self._call(self.arun(goal, thread_id=thread_id))

    def stream(self, goal: str, *, thread_id: str | None = None) -> Iterator[AgentEvent]:
        """Run ``goal`` and yield progress events; the last event has kind ``end``."""
        return self._iterate(self.astream(goal, thread_id=thread_id))

    def resume(self, thread_id: str, *, approve: bool | None = None, reason: str = "") -> RunResult:
        """Continue a run: answer its approval request, or pick up after a crash."""
        return self._call(self.aresume(thread_id, approve=approve, reason=reason))

    def stream_resume(
        self, thread_id: str, *, approve: bool | None = None, reason: str = ""
    ) -> Iterator[AgentEvent]:
        """Continue a run, yielding progress events."""
        return self._iterate(self.astream_resume(thread_id, approve=approve, reason=reason))

    def result(self, thread_id: str) -> RunResult:
        """Return the current result of a thread without running anything."""
        return self._call(self.aresult(thread_id))

    def history(self, thread_id: str) -> list[HistoryEntry]:
        """Return the thread's checkpoints, newest first."""
        return self._call(self.ahistory(thread_id))

    def state(self, thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        """Return the thread's state values, now or at ``checkpoint_id``."""
        return self._call(self.astate(thread_id, checkpoint_id))

    def replay(self, thread_id: str, checkpoint_id: str) -> RunResult:
        """Time travel: continue the thread from an earlier checkpoint, forking its history."""
        return self._call(self.areplay(thread_id, checkpoint_id))

    def close(self) -> None:
        """Stop MCP servers, close the checkpoint database and the private event loop."""
        if self._loop_thread is not None:
            self._loop_thread.call(self.aclose())
            self._loop_thread.stop()
            self._loop_thread = None

    def __enter__(self) -> Agent:
        """Return the agent."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the agent."""
        self.close()

    # ----- internals -------------------------------------------------------------------------

    def run_config(self, thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
        """Return the LangGraph config for a run of ``thread_id`` (at ``checkpoint_id``).

        It carries the agent's recursion bound; use it to drive ``await agent.graph()``
        directly, e.g. ``graph.aget_state(agent.run_config(thread_id))``.
        """
        limits = self.spec.limits
        configurable: dict[str, Any] = {"thread_id": thread_id}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        # Our own limits end a run first; this bound only guards against a routing bug.
        recursion = (limits.max_steps + limits.max_replans + 5) * 8
        return {"configurable": configurable, "recursion_limit": recursion}

    async def _resume_input(self, thread_id: str, approve: bool | None, reason: str) -> Any:
        graph = await self.graph()
        snapshot = await graph.aget_state(self.run_config(thread_id))
        if not snapshot.values:
            raise ValueError(f"no run with thread id {thread_id!r}")
        if snapshot.interrupts:
            if approve is None:
                raise ValueError(
                    f"thread {thread_id!r} is waiting for approval: pass approve=True or False"
                )
            # By id: parallel steps may each wait for approval; one decision answers one.
            waiting = snapshot.interrupts[0]
            return Command(resume={waiting.id: {"approve": approve, "reason": reason}})
        if approve is not None:
            raise ValueError(f"thread {thread_id!r} is not waiting for approval")
        return None  # Continue from the last checkpoint (after a crash), or no-op when finished.

    async def _drive(
        self, graph_input: Any, thread_id: str, *, config: RunnableConfig | None = None
    ) -> AsyncIterator[AgentEvent]:
        graph = await self.graph()
        config = config or self.run_config(thread_id)
        error: str | None = None
        try:
            async for event in self._node_events(graph, graph_input, config):
                yield event
        except GraphRecursionError:
            error = "stopped_limit"
        except Exception as exc:  # Report, keep the checkpoint; the run can be resumed.
            log.debug("run %s raised", thread_id, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
        snapshot = await graph.aget_state(self.run_config(thread_id))
        result = self._result(thread_id, snapshot)
        if error == "stopped_limit":
            result = _replace(result, status="stopped_limit", message="graph step bound reached")
        elif error:
            result = _replace(
                result,
                status="failed",
                message=f"the run stopped on an error: {error}; its checkpoint is kept, "
                f"so `resume` can retry from the last completed node",
            )
        if result.pending_approval:
            agent = str(result.pending_approval.get("agent") or "")
            yield AgentEvent("approval", "safety_check", result.pending_approval, agent=agent)
        yield AgentEvent("end", "", result.to_dict(), result=result)

    async def _node_events(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        graph_input: Any,
        config: RunnableConfig,
    ) -> AsyncIterator[AgentEvent]:
        """Stream the graph and yield the events of each node's update, the nodes of parallel
        steps' branches (subgraphs) included."""
        plans: dict[tuple[str, ...], list[Any]] = {}
        async for item in graph.astream(graph_input, config, stream_mode="updates", subgraphs=True):
            namespace, chunk = cast(tuple[tuple[str, ...], dict[str, Any]], item)
            for node, update in chunk.items():
                if node == "__interrupt__" or not isinstance(update, dict):
                    continue
                # A branch starts from the run's plan; its reflect reports its step's change.
                plan = plans.get(namespace) or plans.get((), [])
                for event in events_from_update(node, update, plan):
                    yield event
                plans[namespace] = update.get("plan") or plan

    def _result(self, thread_id: str, snapshot: Any) -> RunResult:
        """Return the result that a thread's latest checkpoint ``snapshot`` holds."""
        return _result_from_snapshot(thread_id, snapshot)

    @staticmethod
    async def _last_result(events: AsyncIterator[AgentEvent], thread_id: str) -> RunResult:
        result: RunResult | None = None
        async for event in events:
            if event.kind == "end":
                result = event.result
        assert result is not None, f"run {thread_id} produced no end event"
        return result

    def _loop(self) -> _LoopThread:
        with self._loop_lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
            return self._loop_thread

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop().call(coro)

    def _iterate(self, events: AsyncIterator[AgentEvent]) -> Iterator[AgentEvent]:
        loop = self._loop()
        iterator = events.__aiter__()
        while True:
            try:
                yield loop.call(iterator.__anext__())
            except StopAsyncIteration:
                return


def _replace(result: RunResult, **changes: Any) -> RunResult:
    return dataclasses.replace(result, **changes)


def has_work_left(snapshot: Any) -> bool:
    """Tell whether a thread's latest checkpoint still has nodes to run or to commit.

    ``snapshot.next`` alone is not enough: it leaves out a node that finished and whose writes
    were saved when the process died before the next checkpoint. Such a run looks ended by
    ``next`` but is not; resuming it applies those writes and carries on.
    """
    return bool(snapshot.next) or bool(snapshot.tasks)


def _result_from_snapshot(thread_id: str, snapshot: Any) -> RunResult:
    values = snapshot.values or {}
    pending = None
    status: RunStatus = values.get("status", "failed")
    message = values.get("status_reason", "")
    if snapshot.interrupts:
        pending = dict(snapshot.interrupts[0].value)
        status = "awaiting_approval"
        message = f"waiting for approval of {pending.get('tool')}"
    elif has_work_left(snapshot) and status == "running":
        status, message = "failed", "the run was interrupted; `resume` continues it"
    return RunResult(
        thread_id=thread_id,
        status=status,
        message=message,
        answer=values.get("answer"),
        plan=list(values.get("plan") or []),
        observations=list(values.get("observations") or []),
        counters=values.get("counters"),
        pending_approval=pending,
    )


def _writer(metadata: dict[str, Any], scheduled: Sequence[str]) -> str:
    """Return the node that wrote a checkpoint: the one its metadata names (LangGraph before 1.0
    recorded ``writes``), else the node the previous checkpoint scheduled, else its ``source``
    (``input`` for the first)."""
    writes = metadata.get("writes") or {}
    named = next(iter(writes), None)
    if named:
        return str(named)
    if metadata.get("source") == "loop" and scheduled:
        return ",".join(scheduled)
    return str(metadata.get("source", ""))
