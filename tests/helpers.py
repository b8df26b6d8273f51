"""Helpers shared by tests: server processes on 127.0.0.1 and stub tools for model tests."""

from __future__ import annotations

import socket
import subprocess
from typing import Annotated

from langchain_core.tools import tool
from pydantic import Field


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 10) -> None:
    """Terminate ``process``, killing it if it does not exit within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@tool
def calculator(expression: Annotated[str, Field(max_length=40)]) -> str:
    """Evaluate an arithmetic expression such as 2+2."""
    return expression


@tool
def read_file(path: Annotated[str, Field(max_length=40)]) -> str:
    """Read a text file from the workspace."""
    return path
