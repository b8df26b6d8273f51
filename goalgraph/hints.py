"""Planning hints that travel with a tool: read from its MCP ``_meta`` (``goalgraph/hints``).

A server may attach to each tool a cue (the words of a goal that name it), a strong cue, a rank
among cues and a worked example (``goalgraph.tools.hints.hint_payload`` writes them; goalgraph's
own server does for its tools). The profile rules use them: the steps a strong cue adds
(``cued_steps``, in every profile), and under ``tiny`` the planner's example and the restated
steps. No rule is keyed to a tool's name, so a
third-party tool is planned with its own hints, and a tool without hints gets none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goalgraph.tools.hints import HINTS_META_KEY

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["ToolExample", "ToolHints", "hints_from_payloads", "tool_hints"]


@dataclass(frozen=True)
class ToolExample:
    """A worked example of one tool, shown to the model as a few-shot demonstration."""

    goal: str
    """A goal this tool solves in one step."""
    step: str
    """The plan step for it."""
    args: dict[str, Any]
    """The arguments the step's call takes."""
    then: str = ""
    """The step when it follows another step and uses its result; ``step`` when empty."""


@dataclass(frozen=True)
class ToolHints:
    """What a tool's ``_meta`` says about planning with it."""

    rank: int = 1_000
    """Precedence of the cue (lowest first); tools without a rank come last."""
    cue: re.Pattern[str] | None = None
    """The words of a goal that name the tool."""
    strong_cue: re.Pattern[str] | None = None
    """Words so unambiguous that a plan without the tool misses a step."""
    example: ToolExample | None = None
    """A worked example."""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ToolHints:
        """Read a ``_meta`` payload; malformed fields are ignored, never raised."""
        example = payload.get("example")
        return cls(
            rank=payload["rank"] if isinstance(payload.get("rank"), int) else 1_000,
            cue=_pattern(payload.get("cue")),
            strong_cue=_pattern(payload.get("strong_cue")),
            example=_example(example) if isinstance(example, Mapping) else None,
        )


def tool_hints(tools: Iterable[BaseTool]) -> dict[str, ToolHints]:
    """Return the hints of the tools that carry some, by name, in rank order."""
    payloads = {}
    for tool in tools:
        meta = (tool.metadata or {}).get("_meta")
        payload = meta.get(HINTS_META_KEY) if isinstance(meta, Mapping) else None
        if isinstance(payload, Mapping):
            payloads[tool.name] = payload
    return hints_from_payloads(payloads)


def hints_from_payloads(payloads: Mapping[str, Mapping[str, Any]]) -> dict[str, ToolHints]:
    """Return ``ToolHints`` for ``{tool name: payload}``, in rank order."""
    hints = {name: ToolHints.from_payload(payload) for name, payload in payloads.items()}
    return dict(sorted(hints.items(), key=lambda item: item[1].rank))


def _pattern(value: Any) -> re.Pattern[str] | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error:
        return None


def _example(value: Mapping[str, Any]) -> ToolExample | None:
    goal, step, args = value.get("goal"), value.get("step"), value.get("args")
    if not (isinstance(goal, str) and isinstance(step, str) and isinstance(args, dict)):
        return None
    then = value.get("then")
    return ToolExample(goal, step, dict(args), then if isinstance(then, str) else "")
