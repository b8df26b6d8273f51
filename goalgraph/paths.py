"""Where goalgraph keeps its files: one data directory, overridable with ``GOALGRAPH_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir"]


def data_dir() -> Path:
    """Return goalgraph's data directory, creating it on first use.

    ``GOALGRAPH_HOME`` wins; otherwise ``$XDG_DATA_HOME/goalgraph`` (``~/.local/share/goalgraph``).
    Checkpoints, converted models and caches all live under it.
    """
    explicit = os.environ.get("GOALGRAPH_HOME")
    if explicit:
        root = Path(explicit).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        root = Path(xdg) / "goalgraph"
    root.mkdir(parents=True, exist_ok=True)
    return root
