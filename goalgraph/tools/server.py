"""goalgraph's own MCP server: calculator, files, search, SQLite, http_get, python, memory.

File tools are confined to one workspace folder, ``http_get`` to an allowlist of hosts, and
``python`` to a sandbox (``goalgraph.tools.sandbox``). Each tool declares its risk class in its MCP
``_meta`` for goalgraph's safety layer, and the standard MCP annotations for any other client.

Run it as ``python -m goalgraph.tools.server --workspace DIR`` (stdio, the default) or with
``--transport streamable-http --port 8765`` to serve ``http://127.0.0.1:8765/mcp``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from goalgraph.memory.backend import MemoryBackend
from goalgraph.memory.types import MemoryBackendError
from goalgraph.risk import tool_meta
from goalgraph.spec import HttpToolSpec, MemorySpec, ToolsSpec
from goalgraph.tools.calculator import CalculatorError, calculate
from goalgraph.tools.hints import BUILTIN_HINTS
from goalgraph.tools.sandbox import (
    MAX_CODE_CHARS,
    failure_summary,
    python_tool_description,
    run_python,
)
from goalgraph.tools.sqlite_query import SqliteQueryError
from goalgraph.tools.sqlite_query import query as sqlite_select
from goalgraph.tools.stdio import DEFAULT_MAX_REQUEST_BYTES, run_stdio
from goalgraph.tools.web import WebError, fetch
from goalgraph.tools.workspace import Workspace, WorkspaceError

__all__ = ["build_server", "main"]

SERVER_NAME = "goalgraph"
DEFAULT_PORT = 8765
WORKER_THREADS = 8
"""Most tool calls that run at once, each in a worker thread; further calls wait for a free one."""

_T = TypeVar("_T")

_INSTRUCTIONS = (
    "Tools for arithmetic, text files, search and read-only SQLite in one workspace folder, "
    "fetching allowlisted web pages, and running Python in a sandbox. "
    "Paths are relative to the workspace, e.g. notes/todo.txt. memory_search (when memory is "
    "configured) searches the agent's long-term memory."
)


READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
"""MCP annotations of a tool that only observes the workspace."""

EXPRESSION_PATTERN = r"^[0-9a-z(\-][0-9a-z_+\-*/%^().,\s]*$"
"""What a calculator expression may contain: digits, operators, parentheses, function names."""


def build_server(
    workspace: Workspace | str | os.PathLike[str],
    *,
    config: ToolsSpec | None = None,
    memory: MemorySpec | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> FastMCP:
    """Build the MCP server with its tools bound to ``workspace``.

    Args:
        workspace: The folder file tools are confined to (created when missing).
        config: Limits of the python sandbox and the http_get allowlist; defaults otherwise.
        memory: Long-term memory for the ``memory_search`` tool; without it (or with backend
            ``none``) the tool is not offered.
        host: Interface the HTTP transport listens on.
        port: Port the HTTP transport listens on.

    Returns:
        A FastMCP server; call ``run("stdio")`` or ``run("streamable-http")``.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    config = config or ToolsSpec()
    # No tool work runs on the event loop: one call stuck in a blocking system call (a FIFO, a
    # dead network mount) would stall every other call and the session's own replies. The
    # limiter bounds the threads that stuck calls can hold.
    limiter = anyio.CapacityLimiter(WORKER_THREADS)

    async def off_loop(func: Callable[..., _T], *args: Any) -> _T:
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter)

    # WARNING keeps stderr quiet: at INFO, FastMCP logs a line for every request.
    server = FastMCP(
        SERVER_NAME, instructions=_INSTRUCTIONS, host=host, port=port, log_level="WARNING"
    )

    # structured_output=False: the text is the whole result; a {"result": ...} copy of it would
    # only cost the model context.
    @server.tool(
        description="Evaluate an arithmetic expression. Returns the number.",
        structured_output=False,
        annotations=READ_ONLY,
        meta=tool_meta("read", hints=BUILTIN_HINTS["calculator"]),
    )
    async def calculator(
        expression: Annotated[
            str,
            Field(
                description=(
                    "Numbers, + - * / % ** (or ^) and parentheses, and functions such as sqrt"
                ),
                # Schema-constrained decoders (goalgraph's own, vLLM, llama.cpp) cannot then
                # fill the argument with prose, which small models otherwise do.
                pattern=EXPRESSION_PATTERN,
                max_length=200,
            ),
        ],
    ) -> str:
        try:
            return await off_loop(calculate, expression)
        except CalculatorError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description="Read a text file from the workspace. Returns its text.",
        structured_output=False,
        annotations=READ_ONLY,
        meta=tool_meta(
            "read", paths=["path"], hints=BUILTIN_HINTS["read_file"], source="workspace"
        ),
    )
    async def read_file(
        path: Annotated[
            str,
            Field(description="The file's path relative to the workspace, as the user gives it"),
        ],
    ) -> str:
        try:
            return await off_loop(ws.read_text, path)
        except WorkspaceError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description="List files and folders in a workspace folder. Folder names end with /.",
        structured_output=False,
        annotations=READ_ONLY,
        meta=tool_meta(
            "read", paths=["path"], hints=BUILTIN_HINTS["list_files"], source="workspace"
        ),
    )
    async def list_files(
        path: Annotated[str, Field(description="Folder in the workspace; . is the top")] = ".",
    ) -> str:
        try:
            names = await off_loop(ws.list_dir, path)
        except WorkspaceError as exc:
            raise ToolError(str(exc)) from None
        return "\n".join(names) if names else "(empty folder)"

    @server.tool(
        description="Write text to a file in the workspace, replacing it. Creates folders.",
        structured_output=False,
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True, openWorldHint=False),
        meta=tool_meta("write", paths=["path"], hints=BUILTIN_HINTS["write_file"]),
    )
    async def write_file(
        path: Annotated[
            str,
            Field(description="The file's path relative to the workspace, as the user gives it"),
        ],
        content: Annotated[str, Field(description="The full text to write")],
    ) -> str:
        try:
            # relative() resolves the path on the file system too.
            size, shown = await off_loop(lambda: (ws.write_text(path, content), ws.relative(path)))
            return f"wrote {size} bytes to {shown}"
        except WorkspaceError as exc:
            raise ToolError(str(exc)) from None

    http_spec = config.http

    @server.tool(
        description="Fetch a web page (only allowlisted hosts) and return its readable text.",
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=True),
        meta=tool_meta("network", urls=["url"], hints=BUILTIN_HINTS["http_get"], source="external"),
        structured_output=False,
    )
    async def http_get(
        url: Annotated[
            str,
            Field(description="The http:// or https:// URL to fetch", max_length=2000),
        ],
    ) -> str:
        try:
            return (await fetch(url, http_spec)).render()
        except WebError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description=(
            "Run one read-only SQL query (SELECT) on a SQLite database file in the workspace. "
            "Returns a table."
        ),
        annotations=READ_ONLY,
        meta=tool_meta(
            "read", paths=["database"], hints=BUILTIN_HINTS["sqlite_query"], source="workspace"
        ),
        structured_output=False,
    )
    async def sqlite_query(
        database: Annotated[
            str, Field(description="The database file's path relative to the workspace")
        ],
        sql: Annotated[
            str,
            Field(
                description="One SELECT statement; the table sqlite_master lists the tables",
                max_length=10_000,
            ),
        ],
    ) -> str:
        try:
            return await off_loop(sqlite_select, ws, database, sql)
        except SqliteQueryError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(
        description=(
            "Search the text files of a workspace folder for lines containing some text "
            "(plain text, case-insensitive). Returns file:line: text lines."
        ),
        annotations=READ_ONLY,
        meta=tool_meta(
            "read", paths=["path"], hints=BUILTIN_HINTS["search_files"], source="workspace"
        ),
        structured_output=False,
    )
    async def search_files(
        query: Annotated[
            str, Field(description="The exact text to look for", min_length=1, max_length=500)
        ],
        path: Annotated[
            str, Field(description="Folder or file in the workspace; . is the top")
        ] = ".",
        max_results: Annotated[int, Field(description="Most lines returned", ge=1, le=500)] = 50,
    ) -> str:
        try:
            lines = await off_loop(lambda: ws.search(query, path, max_results=max_results))
        except WorkspaceError as exc:
            raise ToolError(str(exc)) from None
        return "\n".join(lines) if lines else f"no matches for {query!r} in {path!r}"

    python_limits = config.python

    @server.tool(
        # Says so when snippets would run unisolated (tools.python.allow_unisolated).
        description=python_tool_description(python_limits),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False),
        meta=tool_meta("exec", hints=BUILTIN_HINTS["python"]),
        structured_output=False,
    )
    async def python(
        code: Annotated[
            str,
            Field(
                description="Python 3 source that prints its results with print()",
                max_length=MAX_CODE_CHARS,
            ),
        ],
    ) -> str:
        result = await off_loop(run_python, code, python_limits)
        if not result.ok:  # the exception and the failing line, not the whole traceback
            raise ToolError(failure_summary(result, code))
        return result.output.rstrip() or "(no output)"

    if memory is not None and memory.backend != "none":
        _add_memory_search(server, memory, limiter)
    return server


def _add_memory_search(server: FastMCP, spec: MemorySpec, limiter: anyio.CapacityLimiter) -> None:
    """Offer ``memory_search`` over the memory ``spec`` names, opened on the first call."""
    opened: list[MemoryBackend] = []

    def search(query: str, budget_tokens: int) -> str:
        from goalgraph.memory.factory import open_memory

        if not opened:
            backend = open_memory(spec)
            assert backend is not None
            opened.append(backend)
        found = opened[0].search(query, budget_tokens=budget_tokens)
        return found.render() if found else f"nothing in memory about {query!r}"

    @server.tool(
        description=(
            "Search long-term memory: what the user told you, their notes and documents, facts "
            "and past conversations. Returns facts with dates and excerpts with their source."
        ),
        annotations=READ_ONLY,
        meta=tool_meta("read", hints=BUILTIN_HINTS["memory_search"], source="memory"),
        structured_output=False,
    )
    async def memory_search(
        query: Annotated[
            str,
            Field(description="What to look for, in a few words", min_length=1,
                  max_length=500),
        ],
        budget_tokens: Annotated[
            int, Field(description="Most tokens of memory returned", ge=32, le=4000)
        ] = 400,
    ) -> str:  # fmt: skip
        try:
            return await anyio.to_thread.run_sync(search, query, budget_tokens, limiter=limiter)
        except MemoryBackendError as exc:
            raise ToolError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server from the command line.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m goalgraph.tools.server",
        description="goalgraph's MCP server: calculator, workspace files, http_get, python.",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path(os.environ.get("GOALGRAPH_WORKSPACE") or "workspace"),
        help="folder the file tools are confined to (default: $GOALGRAPH_WORKSPACE or ./workspace)",
    )
    parser.add_argument(
        "--transport",
        choices=["stdio", "streamable-http"],
        default="stdio",
        help="how clients connect (default: stdio)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP interface (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--config",
        default=None,
        help='JSON of the python and http settings, e.g. \'{"http": {"allow_hosts": ["x.org"]}}\'',
    )
    parser.add_argument(
        "--memory",
        default=None,
        help="JSON of the memory settings (MemorySpec); enables the memory_search tool",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="host http_get may fetch: HOST on ports 80 and 443, HOST:PORT on that port "
        "(repeatable; adds to --config's list)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help="longest request line read over stdio; a longer one is refused unread "
        f"(default: {DEFAULT_MAX_REQUEST_BYTES})",
    )
    args = parser.parse_args(argv)
    try:
        workspace = Workspace(args.workspace)
        config = ToolsSpec.model_validate_json(args.config) if args.config else ToolsSpec()
        memory = MemorySpec.model_validate_json(args.memory) if args.memory else None
    except WorkspaceError as exc:
        parser.exit(2, f"goalgraph.tools.server: {exc}\n")
    except ValueError as exc:
        parser.exit(2, f"goalgraph.tools.server: invalid --config: {exc}\n")
    if args.max_request_bytes <= 0:
        parser.exit(2, "goalgraph.tools.server: --max-request-bytes must be positive\n")
    if args.allow_host:
        hosts = [*config.http.allow_hosts, *args.allow_host]
        try:
            http = HttpToolSpec(**{**config.http.model_dump(), "allow_hosts": hosts})
        except ValueError as exc:
            parser.exit(2, f"goalgraph.tools.server: invalid --allow-host: {exc}\n")
        config = config.model_copy(update={"http": http})
    server = build_server(workspace, config=config, memory=memory, host=args.host, port=args.port)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop it
        if args.transport == "stdio":
            anyio.run(run_stdio, server, args.max_request_bytes)
        else:  # the SDK's HTTP transport refuses bodies over 4 MiB itself
            server.run(transport=args.transport)


if __name__ == "__main__":
    main()
