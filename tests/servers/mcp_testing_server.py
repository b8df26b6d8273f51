"""A third-party-style MCP server for tests, written only with the ``mcp`` SDK.

Run as ``python tests/servers/mcp_testing_server.py``; it speaks stdio. ``record`` appends to the
file named by the ``RECORD_FILE`` environment variable.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time

from mcp.server.fastmcp import FastMCP, Image

__all__ = ["server"]

# A 1x1 transparent PNG.
_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

server = FastMCP("testing", log_level="WARNING")


@server.tool(description="Return the text unchanged.")
def echo(text: str) -> str:
    """Return ``text``."""
    return text


@server.tool(description="Always fail with the given message.")
def boom(message: str) -> str:
    """Raise ``RuntimeError(message)``."""
    raise RuntimeError(message)


@server.tool(description="Sleep for the given seconds, then say so.")
async def slow(seconds: float) -> str:
    """Sleep ``seconds`` without blocking the server."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="Block the whole server for the given seconds, then say so.")
def hang(seconds: float) -> str:
    """Sleep in a synchronous handler, which FastMCP runs on its event loop: until it returns,
    the server answers nothing, not even a ping, as a server stuck in a blocking call."""
    time.sleep(seconds)
    return f"hung {seconds}"


@server.tool(description="Append a tag line to $RECORD_FILE; return the line count.")
def record(tag: str) -> int:
    """Append ``tag`` and a newline to ``$RECORD_FILE`` and return how many lines it holds."""
    path = os.environ["RECORD_FILE"]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(tag + "\n")
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


@server.tool(description="Exit the server process at once.")
def die() -> str:
    """Exit immediately with status 1, as a crashing server would."""
    os._exit(1)


@server.tool(description="Return this server's process id.")
def pid() -> int:
    """Return ``os.getpid()``, so a test can kill the process from outside."""
    return os.getpid()


@server.tool(description="Return a summary of numbers as structured data.")
def stats(values: list[float]) -> dict[str, float]:
    """Return count, total and mean of ``values``."""
    return {"count": len(values), "total": sum(values), "mean": sum(values) / len(values)}


@server.tool(description="Return a tiny PNG image.")
def pixel() -> Image:
    """Return a 1x1 PNG."""
    return Image(data=_PIXEL, format="png")


if __name__ == "__main__":
    server.run("stdio")
