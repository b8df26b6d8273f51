"""``goalgraph studio``: LangGraph's dev server (Studio's backend) offline, on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

__all__ = ["OFFLINE_ENV", "studio_command", "studio_config"]

OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "HF_HUB_OFFLINE": "1",
}
"""Environment that keeps ``langgraph dev`` from calling out (analytics, version check, tracing)."""


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def studio_config(config: Path | None) -> Path:
    """Return the ``langgraph.json`` to serve: ``config``, ``./langgraph.json``, or one written
    to a temporary folder for an installed goalgraph (graph and checkpointer by absolute path)."""
    if config is not None:
        return config
    local = Path("langgraph.json")
    if local.exists():
        return local
    package = Path(__file__).resolve().parents[1]
    content = {
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "dependencies": [str(package.parent)],
        "graphs": {"goalgraph": f"{package / 'graph.py'}:graph"},
        "checkpointer": {"path": f"{package / 'checkpoint.py'}:make_checkpointer"},
        "env": {"LANGSMITH_TRACING": "false", "HF_HUB_OFFLINE": "1"},
    }
    folder = Path(tempfile.mkdtemp(prefix="goalgraph-studio-"))
    path = folder / "langgraph.json"
    path.write_text(json.dumps(content, indent=2))
    return path


def studio_command(
    *, host: str = "127.0.0.1", port: int | None = None, config: Path | None = None
) -> tuple[list[str], dict[str, str], int]:
    """Return the ``langgraph dev`` command line, its environment and its port.

    Raises:
        FileNotFoundError: ``langgraph`` (from ``langgraph-cli[inmem]``) is not installed.
    """
    cli = Path(sys.executable).with_name("langgraph")
    executable = str(cli) if cli.exists() else shutil.which("langgraph")
    if executable is None:
        raise FileNotFoundError(
            "langgraph dev is not installed: pip install 'langgraph-cli[inmem]'"
        )
    port = port or _free_port(host)
    argv = [executable, "dev", "--no-browser", "--no-reload", "--host", host, "--port", str(port)]
    argv += ["--config", str(studio_config(config))]
    return argv, {**os.environ, **OFFLINE_ENV}, port
