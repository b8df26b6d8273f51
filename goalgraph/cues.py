"""Tool cues: the words of a goal that name the tool it needs, from the tools' own hints.

The bundled model copies the tool of the planning example it is shown, so under the ``tiny``
profile the example is chosen by these cues first (``goalgraph.prompts.plan_examples``), and a plan
that ignores a strong cue gets a step for it (``goalgraph.plan.add_cued_steps``). The cues come
from each tool's hints (``goalgraph.hints``); everything here is a pure function of text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from goalgraph.hints import ToolHints

__all__ = ["cue_clause", "cued_actions", "cued_tool"]

_CLAUSE_BREAK = re.compile(r"[.?!;](?=\s|$)|,?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_JOIN = re.compile(r",?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)


def cued_tool(text: str, hints: Mapping[str, ToolHints]) -> str | None:
    """Return the first tool (in rank order) whose cue ``text`` holds."""
    for tool, hint in sorted(hints.items(), key=lambda item: item[1].rank):
        if hint.cue is not None and hint.cue.search(text):
            return tool
    return None


def cued_actions(goal: str, hints: Mapping[str, ToolHints]) -> list[str]:
    """Return the tools the goal's actions are cued for: none, one, or two joined actions.

    Two tools come back when an " and " or " then " joins two parts cued for different tools, e.g.
    "Compute 37*43 and write the result to result.txt" gives ``["calculator", "write_file"]``
    with goalgraph's own tools.
    """
    for join in _JOIN.finditer(goal):
        first = cued_tool(goal[: join.start()], hints)
        second = cued_tool(goal[join.end() :], hints)
        if first and second and first != second:
            return [first, second]
    tool = cued_tool(goal, hints)
    return [tool] if tool else []


def cue_clause(goal: str, cue: re.Pattern[str]) -> str | None:
    """Return the clause of ``goal`` holding ``cue``, capitalised, or ``None`` without the cue.

    Clauses end at sentence ends and at " and " / " then ", unless the cue itself spans them.
    """
    found = cue.search(goal)
    if not found:
        return None
    breaks = list(_CLAUSE_BREAK.finditer(goal))
    start = max((b.end() for b in breaks if b.end() <= found.start()), default=0)
    end = min((b.start() for b in breaks if b.start() >= found.end()), default=len(goal))
    clause = goal[start:end].strip()
    return clause[:1].upper() + clause[1:]
