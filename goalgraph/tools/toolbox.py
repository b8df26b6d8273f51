"""``ToolBox``: one persistent MCP session per server, and tool calls that never raise.

A new stdio session per call costs ~1.6 s; a kept one a few milliseconds. ``ToolBox.open`` starts
every configured server once, loads its tools as LangChain tools, and keeps the sessions until the
``async with`` block ends. ``ToolBox.call`` turns every tool problem (unknown tool, tool error,
timeout, dead server) into a ``ToolResult`` with ``ok=False``.

A server that stops answering is treated like one that died. A timeout alone does not tell a hung
server from one slow tool, so after a call times out the server is pinged (MCP ``ping``, answered
by the session itself, not by a tool): without a reply within ``ping_timeout_s`` it is stopped
(a stdio server's process is killed) and restarted on the next call, like a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import anyio
import httpx
from langchain_core.messages import ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.tools import BaseTool, ToolException
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.sessions import Connection
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED
from pydantic import BaseModel

from goalgraph.spec import McpServerSpec
from goalgraph.tools.content import DEFAULT_MAX_OUTPUT_CHARS, ArtifactStore, content_to_text

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_PING_TIMEOUT_S",
    "ToolBox",
    "ToolResult",
    "ToolServerError",
    "content_to_text",
]

logger = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 300
_STOP_TIMEOUT_S = 10.0
DEFAULT_MAX_RESTARTS = 3
"""How often a server that died is restarted before it stays down."""
DEFAULT_PING_TIMEOUT_S = 5.0
"""Seconds a server has to answer a ping after a call timed out before it counts as hung."""
_FASTMCP_PREFIX = re.compile(r"^Error executing tool [^:]*: ")
# Errors that mean the transport under a session is gone, not that one call went wrong.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    OSError,
    httpx.TransportError,
)


class ToolServerError(RuntimeError):
    """An MCP server that could not be started or reached.

    Attributes:
        server: The server's name in the configuration.
        target: Its command line (stdio) or URL (HTTP).
        cause: Why it failed, in one line.
    """

    def __init__(self, server: str, target: str, cause: str) -> None:
        """Build the error from the server's name, command line or URL, and the cause."""
        super().__init__(f"MCP server {server!r} ({target}) failed to start: {cause}")
        self.server = server
        self.target = target
        self.cause = cause


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call.

    Attributes:
        ok: ``True`` when the tool ran and reported success.
        content: The tool's output as text (on a tool-reported error, its full error text).
        error: One line naming the tool and the cause when ``ok`` is ``False``.
        elapsed_s: Wall-clock seconds the call took.
    """

    ok: bool
    content: str
    error: str | None = None
    elapsed_s: float = 0.0


class ToolBox:
    """Live MCP sessions and their tools; open it with ``async with ToolBox.open(...)``.

    Example:
        >>> async with ToolBox.open(spec.all_servers()) as box:  # doctest: +SKIP
        ...     result = await box.call("calculator", {"expression": "12*(3+4)"})
        ...     result.content
        '84'
    """

    def __init__(
        self,
        servers: Iterable[_Server],
        *,
        timeout_s: float,
        max_output_chars: int | None,
        artifacts: ArtifactStore | None = None,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        start_timeout_s: float | None = None,
        ping_timeout_s: float = DEFAULT_PING_TIMEOUT_S,
    ) -> None:
        """Index the tools of started servers; use ``ToolBox.open`` instead of calling this."""
        self.max_restarts = max_restarts
        """How often each server may be restarted after it died or hung."""
        self.ping_timeout_s = ping_timeout_s
        """Seconds a server has to answer a ping after a call timed out."""
        self.start_timeout_s = timeout_s if start_timeout_s is None else start_timeout_s
        """Seconds a (re)starting server may take."""
        self._exposed: dict[tuple[str, str], str] = {}
        self._closed = False
        self.timeout_s = timeout_s
        """Default seconds one call may take."""
        self.max_output_chars = max_output_chars
        """Longest output kept per call."""
        self.artifacts = artifacts
        """Where media and the full text of cut outputs are kept (``None``: not kept)."""
        self._servers = {server.name: server for server in servers}
        self._tools: dict[str, tuple[_Server, BaseTool]] = {}
        self.tools: list[BaseTool] = []
        """The LangChain tools of every server, with unique names."""
        counts: dict[str, int] = {}
        for server in self._servers.values():
            for tool in server.tools:
                counts[tool.name] = counts.get(tool.name, 0) + 1
        for server in self._servers.values():
            for tool in server.tools:
                name = tool.name
                if counts[name] > 1:
                    name = f"{server.name}__{name}"
                    while name in self._exposed.values() or name in counts:
                        name += "_"
                self._exposed[(server.name, tool.name)] = name
                self._add(server, tool, name)

    def _add(self, server: _Server, tool: BaseTool, name: str) -> None:
        if name != tool.name:
            # The copy still calls the server's tool by its original name.
            tool = tool.model_copy(update={"name": name})
        previous = self._tools.get(name)
        self._tools[name] = (server, tool)
        if previous is None:
            self.tools.append(tool)
        else:
            self.tools[self.tools.index(previous[1])] = tool

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        servers: Mapping[str, McpServerSpec],
        *,
        timeout_s: float = 60,
        start_timeout_s: float | None = None,
        max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS,
        artifacts: ArtifactStore | None = None,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        ping_timeout_s: float = DEFAULT_PING_TIMEOUT_S,
    ) -> AsyncIterator[ToolBox]:
        """Start every server, keep one session each, and close them all on exit.

        Servers start concurrently. Use the box inside one running event loop; the sessions
        live in background tasks of that loop.

        Args:
            servers: Server specs by name, e.g. ``AgentSpec.all_servers()``.
            timeout_s: Default seconds one tool call may take.
            start_timeout_s: Seconds a server may take to start; defaults to ``timeout_s``.
            max_output_chars: Longest output kept per call; ``None`` keeps all.
            artifacts: Where media and the full text of cut outputs are saved.
            max_restarts: How often a server that died, or hung, is restarted (on the next
                call of one of its tools); 0 leaves it down.
            ping_timeout_s: Seconds a server has to answer a ping after one of its calls timed
                out; a server that does not is stopped and counts as dead.

        Yields:
            The open tool box.

        Raises:
            ToolServerError: If a server cannot be started; the others are closed again.
        """
        start_timeout = timeout_s if start_timeout_s is None else start_timeout_s
        connections = {name: spec.to_connection() for name, spec in servers.items()}
        client = MultiServerMCPClient(connections)  # type: ignore[arg-type]
        started = [_Server(name, cast(Connection, connections[name]), client) for name in servers]
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(_stop_all, started)
            outcomes = await asyncio.gather(
                *(server.start(start_timeout) for server in started), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            box = cls(
                started,
                timeout_s=timeout_s,
                max_output_chars=max_output_chars,
                artifacts=artifacts,
                max_restarts=max_restarts,
                start_timeout_s=start_timeout,
                ping_timeout_s=ping_timeout_s,
            )
            try:
                yield box
            finally:
                box._closed = True  # no restarts once the block has ended

    @property
    def servers(self) -> list[str]:
        """The names of the servers in this box."""
        return list(self._servers)

    def server_of(self, tool_name: str) -> str:
        """Return the name of the server that provides ``tool_name``.

        Raises:
            KeyError: If no server provides it.
        """
        try:
            return self._tools[tool_name][0].name
        except KeyError:
            raise KeyError(f"unknown tool {tool_name!r}") from None

    def get_tool(self, tool_name: str) -> BaseTool:
        """Return the LangChain tool named ``tool_name``.

        Raises:
            KeyError: If no server provides it.
        """
        try:
            return self._tools[tool_name][1]
        except KeyError:
            raise KeyError(f"unknown tool {tool_name!r}") from None

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Return the JSON schema of each tool's arguments, by tool name (copies, safe to edit)."""
        result: dict[str, dict[str, Any]] = {}
        for name, (_, tool) in self._tools.items():
            schema = tool.args_schema
            if isinstance(schema, dict):
                result[name] = copy.deepcopy(schema)
            elif isinstance(schema, type) and issubclass(schema, BaseModel):
                result[name] = schema.model_json_schema()
            else:
                result[name] = {"type": "object", "properties": {}}
        return result

    def is_running(self, server: str) -> bool:
        """Return whether ``server``'s session is still usable."""
        return self._servers[server].failure is None

    async def call(
        self, name: str, args: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> ToolResult:
        """Call a tool and return its result; never raises for tool problems.

        Args:
            name: The tool's name as listed in ``tools``.
            args: Its arguments.
            timeout_s: Seconds this call may take; defaults to the box's ``timeout_s``.

        Returns:
            ``ok=True`` with the output as text, or ``ok=False`` with a one-line ``error`` for an
            unknown tool, a tool error, a timeout or a server that has died or hung.
        """
        started = time.perf_counter()

        def failed(error: str, content: str = "") -> ToolResult:
            return ToolResult(False, content, error, time.perf_counter() - started)

        entry = self._tools.get(name)
        if entry is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return failed(f"unknown tool {name!r}; available tools: {known}")
        server, tool = entry
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            return failed(f"tool {name!r}: arguments must be an object, not {type(args).__name__}")
        if server.failure is not None:
            problem = await self._reconnect(server)
            if problem is not None:
                return failed(f"tool {name!r} is unavailable: {problem}")
            server, tool = self._tools[name]
        timeout = self.timeout_s if timeout_s is None else timeout_s

        # Invoking with a ToolCall (not bare args) makes the adapter return a ToolMessage whose
        # status tells an isError result apart from a success; with bare args both look alike.
        request = tool_call(name=tool.name, args=dict(args), id=f"call_{uuid.uuid4().hex}")
        task = asyncio.ensure_future(tool.ainvoke(request))
        try:
            await asyncio.wait(
                {task, server.down}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            if server.down.done():
                return failed(
                    f"tool {name!r} failed: server {server.name!r} died ({server.failure})"
                )
            if not await server.answers_ping(self.ping_timeout_s):
                wait = f"{self.ping_timeout_s:g} s"
                server.mark_down(f"it stopped answering (no reply to a ping within {wait})")
                then = (
                    "the next call restarts it"
                    if server.restarts < self.max_restarts
                    else f"it stays down after {server.restarts} restarts"
                )
                return failed(
                    f"tool {name!r} timed out after {timeout:g} s and server {server.name!r} "
                    f"did not answer a ping within {wait}: it was stopped as hung; {then}"
                )
            return failed(f"tool {name!r} timed out after {timeout:g} s")

        exc = task.exception()
        if exc is not None:
            return failed(self._describe_call_error(name, server, exc))
        message = task.result()
        if isinstance(message, ToolMessage):
            structured = (message.artifact or {}).get("structured_content")
            text = content_to_text(
                message.content,
                structured,
                max_chars=self.max_output_chars,
                artifacts=self.artifacts,
            )
            if message.status == "error":
                return failed(f"tool {name!r} failed: {_one_line(text) or 'no details'}", text)
        else:  # an interceptor may hand back plain content
            text = content_to_text(
                message, max_chars=self.max_output_chars, artifacts=self.artifacts
            )
        return ToolResult(True, text, None, time.perf_counter() - started)

    async def _reconnect(self, server: _Server) -> str | None:
        """Restart a server that died; return why it is still down, or ``None``.

        A call that was running when the server died is not repeated (the tool may have had
        effects); the next call restarts the server, at most ``max_restarts`` times per box.
        """
        if self._closed:
            return f"server {server.name!r} is down: the tool box was closed"
        async with server.restart_lock:
            if server.failure is None:
                return None  # another call restarted it meanwhile
            if server.restarts >= self.max_restarts:
                return (
                    f"server {server.name!r} is down ({server.failure}); "
                    f"gave up after {server.restarts} restarts"
                )
            server.restarts += 1
            previous_failure = server.failure
            logger.warning(
                "restarting MCP server %r (attempt %d of %d) after: %s",
                server.name,
                server.restarts,
                self.max_restarts,
                previous_failure,
            )
            try:
                await server.restart(self.start_timeout_s)
            except ToolServerError as exc:
                return f"server {server.name!r} is down and did not restart: {exc.cause}"
            for tool in server.tools:
                name = self._exposed.get((server.name, tool.name))
                if name is not None:  # a tool that appeared after the start is not offered
                    self._add(server, tool, name)
            return None

    def _describe_call_error(self, name: str, server: _Server, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return f"tool {name!r} failed: timed out talking to server {server.name!r}"
        if isinstance(exc, McpError) and exc.error.code == CONNECTION_CLOSED:
            server.mark_down("its process exited or closed the connection")
            return f"tool {name!r} failed: server {server.name!r} closed the connection"
        if isinstance(exc, _TRANSPORT_ERRORS):
            cause = _exc_text(exc)
            server.mark_down(f"connection lost: {cause}")
            return f"tool {name!r} failed: connection to server {server.name!r} lost ({cause})"
        if isinstance(exc, McpError):
            detail = _one_line(str(exc))
            return f"tool {name!r} failed: MCP error from server {server.name!r}: {detail}"
        if isinstance(exc, ToolException):
            return f"tool {name!r} failed: {_one_line(str(exc))}"
        return f"tool {name!r} failed: {_exc_text(exc)}"


class _Server:
    """One MCP server and the background task that owns its session.

    The session is entered inside its own task, not the caller's: the MCP transports run anyio task
    groups, and when one of their tasks fails (e.g. writing to a server that died) the group cancels
    the task that entered it. Owned here, that cancels only this task, and ``down`` tells waiting
    callers; entered by the caller, it would cancel the whole agent run.
    """

    def __init__(self, name: str, connection: Connection, client: MultiServerMCPClient) -> None:
        self.name = name
        self.connection = connection
        self.client = client
        self.tools: list[BaseTool] = []
        self.restarts = 0
        self.restart_lock = asyncio.Lock()
        self._reset()

    def _reset(self) -> None:
        self.failure: str | None = None
        self.session: ClientSession | None = None
        loop = asyncio.get_running_loop()
        self.down: asyncio.Future[None] = loop.create_future()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def target(self) -> str:
        """Return the command line (stdio) or URL (HTTP) shown in messages."""
        conn: Mapping[str, Any] = self.connection
        if "url" in conn:
            return str(conn["url"])
        return shlex.join([str(conn.get("command")), *map(str, conn.get("args", []))])

    async def start(self, timeout_s: float) -> None:
        """Start the owner task and wait until the tools are loaded.

        Raises:
            ToolServerError: If the server fails or does not start within ``timeout_s``.
        """
        self._task = asyncio.create_task(self._own(), name=f"mcp-server:{self.name}")
        await asyncio.wait(
            {self._ready, self.down}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if self._ready.done():
            return
        if self.down.done():
            raise ToolServerError(self.name, self.target, self.failure or "it stopped")
        self.mark_down("start timed out")
        await self.stop()
        raise ToolServerError(self.name, self.target, f"not ready within {timeout_s:g} s")

    async def restart(self, timeout_s: float) -> None:
        """Close what is left of the session and start the server again.

        Raises:
            ToolServerError: If it does not come back within ``timeout_s``.
        """
        await self.stop()
        self._reset()
        await self.start(timeout_s)

    async def answers_ping(self, timeout_s: float) -> bool:
        """Return whether the session answers an MCP ping within ``timeout_s``.

        Only a ping left unanswered counts as ``False``; a session that is gone or failed is
        the dead-server path's business (``down``), not this one's.
        """
        session = self.session
        if session is None or self.failure is not None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await session.send_ping()
        except (TimeoutError, McpError) as exc:
            # A session-wide read timeout shorter than ours ends the ping as an McpError.
            if isinstance(exc, TimeoutError) or exc.error.code == httpx.codes.REQUEST_TIMEOUT:
                return self.failure is not None  # it died meanwhile: not a hang
            logger.debug("ping of MCP server %r failed: %s", self.name, _exc_text(exc))
        except Exception as exc:  # a closed or broken session: the owner task reports it
            logger.debug("ping of MCP server %r failed: %s", self.name, _exc_text(exc))
        return True

    def mark_down(self, reason: str) -> None:
        """Record that the session is unusable and let the owner task close it."""
        if self.failure is None:
            self.failure = reason
            logger.warning("MCP server %r is down: %s", self.name, reason)
        self._stop.set()

    async def stop(self) -> None:
        """Close the session (stopping a stdio server's process) and wait for it."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        if not self._ready.done():  # still starting: nothing to close gracefully
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=_STOP_TIMEOUT_S)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _own(self) -> None:
        try:
            async with self.client.session(self.name) as session:
                self.tools = await load_mcp_tools(session, server_name=self.name)
                self.session = session
                self._ready.set_result(None)
                await self._stop.wait()
        except asyncio.CancelledError:
            self.failure = self.failure or "stopped"
            raise
        except Exception as exc:  # ExceptionGroup from the transport included
            if self.failure is None:
                self.failure = _startup_cause(exc) if not self._ready.done() else _exc_text(exc)
                if self._ready.done():
                    logger.warning("MCP server %r is down: %s", self.name, self.failure)
        finally:
            self.failure = self.failure or "closed"
            if not self.down.done():
                self.down.set_result(None)


async def _stop_all(servers: Sequence[_Server]) -> None:
    await asyncio.gather(*(server.stop() for server in servers))


def _one_line(text: str) -> str:
    text = _FASTMCP_PREFIX.sub("", text.strip())
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith("For further information")]
    line = "; ".join(kept)
    if len(line) > _MAX_ERROR_CHARS:
        line = line[: _MAX_ERROR_CHARS - 3] + "..."
    return line


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _exc_text(exc: BaseException) -> str:
    leaves = [leaf for leaf in _leaves(exc) if not isinstance(leaf, asyncio.CancelledError)]
    leaf = leaves[0] if leaves else exc
    detail = _one_line(str(leaf))
    return f"{type(leaf).__name__}: {detail}" if detail else type(leaf).__name__


def _startup_cause(exc: BaseException) -> str:
    leaves = [leaf for leaf in _leaves(exc) if not isinstance(leaf, asyncio.CancelledError)]
    leaf = leaves[0] if leaves else exc
    if isinstance(leaf, FileNotFoundError):
        return f"command not found: {leaf.filename or leaf}"
    if isinstance(leaf, PermissionError):
        return f"permission denied: {leaf.filename or leaf}"
    # A process that exits at once closes its pipes: which error the handshake meets first
    # (the closed connection, or a write to the broken pipe) depends on timing.
    closed = isinstance(leaf, McpError) and leaf.error.code == CONNECTION_CLOSED
    if closed or isinstance(leaf, anyio.BrokenResourceError | anyio.ClosedResourceError):
        return "it exited before the MCP handshake finished (see its stderr)"
    if isinstance(leaf, httpx.TransportError):
        return f"cannot connect: {_exc_text(leaf)}"
    return _exc_text(leaf)
