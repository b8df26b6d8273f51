"""Risk classes of tools: what a tool can do, read from the MCP tool's annotations.

goalgraph's own server states each tool's class in the tool's ``_meta`` (``goalgraph/risk``),
along with which arguments are workspace paths and which are URLs, so the policy can check them
before the call. Any other server's tool is classed from the standard MCP annotations:
``openWorldHint`` → ``network``, ``readOnlyHint`` → ``read``, otherwise ``write``. A tool with no
annotations at all could do anything and is classed ``exec``. ``tools.risk`` in the spec overrides
all of this per tool name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goalgraph.spec import RiskClass
from goalgraph.tools.hints import HINTS_META_KEY

if TYPE_CHECKING:  # goalgraph's MCP server imports this module and never loads LangChain.
    from langchain_core.tools import BaseTool

__all__ = [
    "PATHS_META_KEY",
    "RISK_META_KEY",
    "URLS_META_KEY",
    "ToolTraits",
    "tool_meta",
    "tool_traits",
]

RISK_META_KEY = "goalgraph/risk"
"""``_meta`` key of a tool's risk class on goalgraph's MCP server."""
PATHS_META_KEY = "goalgraph/paths"
"""``_meta`` key listing the arguments that are paths inside the workspace."""
URLS_META_KEY = "goalgraph/urls"
"""``_meta`` key listing the arguments that are URLs fetched over the network."""

_CLASSES: frozenset[str] = frozenset({"read", "write", "exec", "network"})


def tool_meta(
    risk: RiskClass,
    *,
    paths: Iterable[str] = (),
    urls: Iterable[str] = (),
    hints: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ``_meta`` goalgraph's server attaches to a tool (``hints``: its planning
    hints, ``goalgraph.tools.hints``)."""
    meta: dict[str, Any] = {RISK_META_KEY: risk}
    if hints:
        meta[HINTS_META_KEY] = dict(hints)
    if paths:
        meta[PATHS_META_KEY] = list(paths)
    if urls:
        meta[URLS_META_KEY] = list(urls)
    return meta


@dataclass(frozen=True)
class ToolTraits:
    """What the safety policy knows about one tool besides its schema."""

    risk: RiskClass
    """The tool's risk class."""
    path_args: tuple[str, ...] = ()
    """Arguments that must stay inside the workspace."""
    url_args: tuple[str, ...] = ()
    """Arguments that are fetched over the network."""


def tool_traits(
    tools: Iterable[BaseTool], overrides: Mapping[str, RiskClass] | None = None
) -> dict[str, ToolTraits]:
    """Return the traits of each tool by name; ``overrides`` sets risk classes by name."""
    overrides = overrides or {}
    result = {}
    for tool in tools:
        traits = _traits(tool.metadata or {})
        if tool.name in overrides:
            traits = ToolTraits(overrides[tool.name], traits.path_args, traits.url_args)
        result[tool.name] = traits
    return result


def _traits(metadata: Mapping[str, Any]) -> ToolTraits:
    meta = metadata.get("_meta") or {}
    declared = meta.get(RISK_META_KEY) if isinstance(meta, Mapping) else None
    paths = _names(meta.get(PATHS_META_KEY)) if isinstance(meta, Mapping) else ()
    urls = _names(meta.get(URLS_META_KEY)) if isinstance(meta, Mapping) else ()
    if declared in _CLASSES:
        return ToolTraits(declared, paths, urls)
    hints = {key: metadata.get(key) for key in ("readOnlyHint", "destructiveHint", "openWorldHint")}
    if all(value is None for value in hints.values()):
        return ToolTraits("exec", paths, urls)
    if hints["openWorldHint"]:
        return ToolTraits("network", paths, urls)
    if hints["readOnlyHint"]:
        return ToolTraits("read", paths, urls)
    return ToolTraits("write", paths, urls)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()
