"""goalgraph's tool layer: the calculator and workspace behind its MCP server, and ``ToolBox``.

Names are imported on first use, so ``python -m goalgraph.tools.server`` does not pay for
LangChain and the MCP client when it only needs the calculator and the workspace.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from goalgraph.tools.calculator import CalculatorError, calculate, evaluate, format_number
    from goalgraph.tools.toolbox import ToolBox, ToolResult, ToolServerError, content_to_text
    from goalgraph.tools.workspace import Workspace, WorkspaceError

__all__ = [
    "CalculatorError",
    "ToolBox",
    "ToolResult",
    "ToolServerError",
    "Workspace",
    "WorkspaceError",
    "calculate",
    "content_to_text",
    "evaluate",
    "format_number",
]

_HOMES = {
    "CalculatorError": "calculator",
    "calculate": "calculator",
    "evaluate": "calculator",
    "format_number": "calculator",
    "ToolBox": "toolbox",
    "ToolResult": "toolbox",
    "ToolServerError": "toolbox",
    "content_to_text": "toolbox",
    "Workspace": "workspace",
    "WorkspaceError": "workspace",
}


def __getattr__(name: str) -> Any:
    """Import ``name`` from its submodule on first access."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names, including those not imported yet."""
    return sorted([*globals(), *__all__])
