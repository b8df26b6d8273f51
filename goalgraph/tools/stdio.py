"""The stdio transport of goalgraph's MCP server, with a bound on a request's size.

The MCP SDK's ``stdio_server`` reads stdin a line at a time and parses each line whole, so a
500 MB line is held in memory, decoded and parsed before anything can refuse it. Here stdin is
read in chunks; a line longer than ``max_bytes`` is never kept: its first and last bytes are kept
to find the request's id, the rest is read and discarded, and the client gets a JSON-RPC error
for that id: at once when the id is among the line's first members, else when the line ends
(the MCP Python SDK, goalgraph's own client included, writes ``id`` last). A line whose id is
among neither its first nor its last members is logged and dropped.
Lines within the bound go to the SDK's own transport unchanged. (The SDK's streamable-HTTP
transport already refuses request bodies over 4 MiB.)
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from io import TextIOWrapper
from typing import Any, cast

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.stdio import stdio_server
from mcp.types import INVALID_REQUEST

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "BoundedLines", "run_stdio"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Longest request line read (bytes); the same bound as the SDK's HTTP transport."""

_CHUNK = 64 * 1024
_HEAD = 4096
"""Bytes of an oversized line kept at its start to find its id."""
_TAIL = 4096
"""Bytes of an oversized line kept at its end, for an id written last."""
# One leading member of a JSON-RPC message whose value is a string or a number.
_MEMBER = re.compile(rb'\s*"(jsonrpc|id|method)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*,')
# The last member of what is left of a JSON-RPC message (its closing brace taken off).
_LAST_MEMBER = re.compile(rb',\s*"(jsonrpc|id|method)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*$')


async def run_stdio(server: FastMCP, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
    """Serve ``server`` over stdin and stdout, refusing request lines over ``max_request_bytes``.

    This is ``FastMCP.run_stdio_async`` with bounded streams given to the SDK's transport.
    """
    stdout = _SerialWriter(anyio.wrap_file(TextIOWrapper(sys.stdout.buffer, encoding="utf-8")))
    stdin = BoundedLines(anyio.wrap_file(sys.stdin.buffer), max_request_bytes, stdout.write_line)
    async with stdio_server(stdin=cast(Any, stdin), stdout=cast(Any, stdout)) as (read, write):
        # FastMCP has no public hook for its stdio streams; run_stdio_async does the same.
        low_level = server._mcp_server
        await low_level.run(read, write, low_level.create_initialization_options())


class BoundedLines:
    """The lines of a binary stream as text, each at most ``max_bytes`` long.

    An oversized line is not yielded: its rest is read and discarded, and ``reply`` gets a
    JSON-RPC error for its request when its id and method are among its first members (at once)
    or its last ones (when the line ends).
    """

    def __init__(
        self,
        stream: anyio.AsyncFile[bytes],
        max_bytes: int,
        reply: Callable[[str], Awaitable[None]],
    ) -> None:
        """Read ``stream``; send refusals as one JSON line through ``await reply(line)``."""
        self._stream = stream
        self.max_bytes = max_bytes
        """Longest line yielded, in bytes, without its newline."""
        self._reply = reply

    async def __aiter__(self) -> AsyncIterator[str]:
        """Yield each line that fits, newline included, decoded as UTF-8 (errors replaced)."""
        line = bytearray()
        oversized = 0  # bytes of the line being discarded; 0 while it fits
        leading: dict[str, Any] | None = None  # its first members, while its id is unknown
        tail = b""  # its last bytes, kept while its id is unknown
        while chunk := await self._stream.read1(_CHUNK):
            start = 0
            while start < len(chunk):
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start : end + 1]
                start += len(piece)
                if oversized:
                    oversized += len(piece)
                    if leading is not None:
                        tail = (tail + piece[-_TAIL:])[-_TAIL:]
                elif len(line) + len(piece.rstrip(b"\r\n")) > self.max_bytes:
                    oversized = len(line) + len(piece)
                    head = bytes(line[:_HEAD])
                    members = _leading_members(head + piece[: _HEAD - len(head)])
                    if "id" in members and "method" in members:
                        await self._refuse(members)
                    else:  # the id may come last: answer when the line ends
                        leading = members
                        tail = (bytes(line[-_TAIL:]) + piece[-_TAIL:])[-_TAIL:]
                    line.clear()
                else:
                    line += piece
                if end < 0:
                    break
                if oversized:
                    if leading is not None:
                        await self._refuse({**_trailing_members(tail), **leading})
                        leading, tail = None, b""
                    logger.warning(
                        "refused a request line of %d bytes (limit %d)", oversized, self.max_bytes
                    )
                    oversized = 0
                else:
                    yield line.decode("utf-8", errors="replace")
                    line.clear()
        if line and not oversized:
            yield line.decode("utf-8", errors="replace")

    async def _refuse(self, members: dict[str, Any]) -> None:
        """Send the refusal for the request whose ``id`` and ``method`` are in ``members``."""
        if "id" not in members or "method" not in members:
            logger.warning("dropping a request line over %d bytes: no id found", self.max_bytes)
            return
        error = {
            "jsonrpc": "2.0",
            "id": members["id"],
            "error": {
                "code": INVALID_REQUEST,
                "message": (
                    f"request too large: over {self.max_bytes} bytes, the limit of this server "
                    "(goalgraph mcp-server --max-request-bytes); it was not read or run"
                ),
            },
        }
        await self._reply(json.dumps(error))


def _leading_members(head: bytes) -> dict[str, Any]:
    """Return the ``jsonrpc``, ``id`` and ``method`` members a JSON object starts with.

    Only members before any other are read, so an ``id`` nested in the params never counts.
    """
    found: dict[str, Any] = {}
    position = head.find(b"{")
    if position < 0 or head[:position].strip():
        return found
    position += 1
    while match := _MEMBER.match(head, position):
        try:
            found[match.group(1).decode()] = json.loads(match.group(2))
        except ValueError:
            break
        position = match.end()
    return found


def _trailing_members(tail: bytes) -> dict[str, Any]:
    """Return the ``jsonrpc``, ``id`` and ``method`` members a JSON object ends with.

    ``tail`` is the end of the object. Only members after any other are read: the member just
    before the closing brace, then the one before it, and so on, so an ``id`` nested in the
    params (whose own closing brace would come first) never counts.
    """
    found: dict[str, Any] = {}
    rest = tail.rstrip()
    if not rest.endswith(b"}"):
        return found
    rest = rest[:-1]
    while match := _LAST_MEMBER.search(rest):
        try:
            found.setdefault(match.group(1).decode(), json.loads(match.group(2)))
        except ValueError:
            break
        rest = rest[: match.start()]
    return found


class _SerialWriter:
    """A text file written by one coroutine at a time: the transport's and the refusals."""

    def __init__(self, file: anyio.AsyncFile[str]) -> None:
        self._file = file
        self._lock = anyio.Lock()

    async def write(self, text: str) -> None:
        """Write ``text`` (the transport writes one whole message with its newline)."""
        async with self._lock:
            await self._file.write(text)

    async def flush(self) -> None:
        """Flush the file."""
        async with self._lock:
            await self._file.flush()

    async def write_line(self, text: str) -> None:
        """Write ``text`` and a newline, and flush."""
        async with self._lock:
            await self._file.write(text + "\n")
            await self._file.flush()
