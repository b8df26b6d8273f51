"""Open the memory backend an ``AgentSpec`` names."""

from __future__ import annotations

from typing import Any

from goalgraph.memory.backend import MemoryBackend
from goalgraph.spec import MemorySpec

__all__ = ["open_memory"]


def open_memory(spec: MemorySpec, *, chat_model: Any = None) -> MemoryBackend | None:
    """Open the backend ``spec.backend`` names; ``None`` when memory is off.

    ``chat_model`` extracts facts when ``spec.extractor`` is ``model`` (graph backend only).

    Raises:
        MemoryBackendError: The backend cannot be opened (the message says why).
    """
    if spec.backend == "none":
        return None
    if spec.backend == "zep":
        from goalgraph.memory.zep import ZepMemory

        return ZepMemory.from_spec(spec)
    from goalgraph.memory.graph import GraphMemory

    return GraphMemory.from_spec(spec, chat_model=chat_model)
