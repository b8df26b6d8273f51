"""A readable catalog of the tools an agent spec provides: name, server, risk, source, arguments."""

from __future__ import annotations

from typing import Any

from goalgraph.risk import server_trust, tool_traits
from goalgraph.spec import AgentSpec
from goalgraph.tools.toolbox import ToolBox

__all__ = ["describe_arguments", "describe_tools"]


async def describe_tools(spec: AgentSpec) -> list[dict[str, Any]]:
    """Start the spec's MCP servers, and return one entry per tool, sorted by name.

    Each entry has ``name``, ``server``, ``risk``, ``source`` (where its output comes from),
    ``description``, ``schema`` (the arguments' JSON schema) and ``arguments`` (one readable
    line per argument).

    Raises:
        ToolServerError: If a server cannot be started.
    """
    async with ToolBox.open(spec.all_servers(), timeout_s=spec.limits.tool_timeout_s) as box:
        trusted = server_trust(spec.all_servers(), box.server_of)
        traits = tool_traits(box.tools, spec.tools.risk, trusted=trusted)
        schemas = box.schemas()
        return [
            {
                "name": tool.name,
                "server": box.server_of(tool.name),
                "risk": traits[tool.name].risk,
                "source": traits[tool.name].source,
                "description": tool.description,
                "schema": schemas[tool.name],
                "arguments": describe_arguments(schemas[tool.name]),
            }
            for tool in sorted(box.tools, key=lambda tool: tool.name)
        ]


def describe_arguments(schema: dict[str, Any]) -> list[str]:
    """Return one line per argument: ``name: type (required) - description [constraints]``."""
    required = set(schema.get("required") or [])
    lines = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") or "/".join(
            str(option.get("type")) for option in prop.get("anyOf", []) if "type" in option
        )
        need = "required" if name in required else f"default {prop.get('default')!r}"
        limits = [
            f"{key}={prop[key]}"
            for key in ("minLength", "maxLength", "minimum", "maximum", "pattern", "enum")
            if key in prop
        ]
        text = f"{name}: {kind or 'any'} ({need})"
        if prop.get("description"):
            text += f" - {prop['description']}"
        if limits:
            text += f" [{', '.join(limits)}]"
        lines.append(text)
    return lines
