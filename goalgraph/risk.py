"""Risk classes and output sources of tools: what a tool can do, and whether its output is trusted.

goalgraph's own server states each tool's class in the tool's ``_meta`` (``goalgraph/risk``),
along with which arguments are workspace paths and which are URLs, so the policy can check them
before the call. Any other server's tool is classed from the standard MCP annotations:
``openWorldHint`` → ``network``, ``readOnlyHint`` → ``read``, otherwise ``write``. A tool with no
annotations at all could do anything and is classed ``exec``. ``tools.risk`` in the spec overrides
all of this per tool name.

Where a tool's output comes from (its ``Source``) travels the same way (``goalgraph/source``),
but only a trusted server is believed: a server could call its own output trusted, so the tools
of a server the spec does not mark ``trust: trusted`` are ``external`` whatever they declare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from goalgraph.spec import McpServerSpec, RiskClass, Source
from goalgraph.tools.hints import HINTS_META_KEY

if TYPE_CHECKING:  # goalgraph's MCP server imports this module and never loads LangChain.
    from langchain_core.tools import BaseTool

__all__ = [
    "PATHS_META_KEY",
    "RISK_META_KEY",
    "SOURCE_META_KEY",
    "URLS_META_KEY",
    "ToolTraits",
    "server_trust",
    "tool_meta",
    "tool_traits",
]

RISK_META_KEY = "goalgraph/risk"
"""``_meta`` key of a tool's risk class on goalgraph's MCP server."""
PATHS_META_KEY = "goalgraph/paths"
"""``_meta`` key listing the arguments that are paths inside the workspace."""
URLS_META_KEY = "goalgraph/urls"
"""``_meta`` key listing the arguments that are URLs fetched over the network."""
SOURCE_META_KEY = "goalgraph/source"
"""``_meta`` key of where the tool's output comes from (a ``Source``)."""

_CLASSES: frozenset[str] = frozenset({"read", "write", "exec", "network"})
_SOURCES: frozenset[str] = frozenset(get_args(Source))


def tool_meta(
    risk: RiskClass,
    *,
    paths: Iterable[str] = (),
    urls: Iterable[str] = (),
    hints: Mapping[str, Any] | None = None,
    source: Source = "internal",
) -> dict[str, Any]:
    """Return the ``_meta`` goalgraph's server attaches to a tool (``hints``: its planning
    hints, ``goalgraph.tools.hints``; ``source``: where its output comes from)."""
    meta: dict[str, Any] = {RISK_META_KEY: risk, SOURCE_META_KEY: source}
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
    source: Source = "external"
    """Where the tool's output comes from; ``external`` unless a trusted server says otherwise."""


def tool_traits(
    tools: Iterable[BaseTool],
    overrides: Mapping[str, RiskClass] | None = None,
    *,
    trusted: Callable[[str], bool] | None = None,
) -> dict[str, ToolTraits]:
    """Return the traits of each tool by name; ``overrides`` sets risk classes by name.

    Args:
        tools: The tools.
        overrides: Risk classes by tool name (``tools.risk``).
        trusted: Whether a tool (by name) comes from a trusted server, whose declared sources
            are believed; by default no server is trusted and every tool's output is external.
    """
    overrides = overrides or {}
    result = {}
    for tool in tools:
        believed = trusted is not None and trusted(tool.name)
        traits = _traits(tool.metadata or {}, trusted=believed)
        if tool.name in overrides:
            traits = ToolTraits(
                overrides[tool.name], traits.path_args, traits.url_args, traits.source
            )
        result[tool.name] = traits
    return result


def server_trust(
    servers: Mapping[str, McpServerSpec], server_of: Callable[[str], str]
) -> Callable[[str], bool]:
    """Return ``trusted`` for ``tool_traits``: whether a tool's server is marked trusted.

    Args:
        servers: The spec's MCP servers by name (``AgentSpec.all_servers()``).
        server_of: The name of the server that provides a tool (``ToolBox.server_of``).
    """

    def trusted(tool: str) -> bool:
        try:
            return servers[server_of(tool)].trust == "trusted"
        except KeyError:
            return False

    return trusted


def _traits(metadata: Mapping[str, Any], *, trusted: bool) -> ToolTraits:
    meta = metadata.get("_meta") or {}
    if not isinstance(meta, Mapping):
        meta = {}
    declared = meta.get(RISK_META_KEY)
    paths = _names(meta.get(PATHS_META_KEY))
    urls = _names(meta.get(URLS_META_KEY))
    source: Source = "external"
    if trusted:
        # Without a declaration, a tool that reaches the open world still returns outside content.
        default = "external" if metadata.get("openWorldHint") else "internal"
        claimed = meta.get(SOURCE_META_KEY, default)
        source = claimed if claimed in _SOURCES else "external"
    if declared in _CLASSES:
        return ToolTraits(declared, paths, urls, source)
    hints = {key: metadata.get(key) for key in ("readOnlyHint", "destructiveHint", "openWorldHint")}
    if all(value is None for value in hints.values()):
        return ToolTraits("exec", paths, urls, source)
    if hints["openWorldHint"]:
        return ToolTraits("network", paths, urls, source)
    if hints["readOnlyHint"]:
        return ToolTraits("read", paths, urls, source)
    return ToolTraits("write", paths, urls, source)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return ()
