"""Tool cues: the words of a goal that name the tool it needs, e.g. a URL names ``http_get``.

The bundled model copies the tool of the planning example it is shown, so the example is chosen
by these cues first (``goalgraph.prompts.plan_examples``), and a plan that ignores a strong cue
gets a step for it (``goalgraph.plan.add_cued_steps``). Everything here is a pure function of text.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["ARITHMETIC", "STRONG_CUES", "TOOL_CUES", "cue_clause", "cued_actions", "cued_tool"]

_FILE = r"(?<![\w./-])[\w./-]*\.[a-z][a-z0-9]{0,5}\b"
"""A file name with an extension, e.g. ``notes/todo.txt`` or ``../.bashrc``."""

_URL = r"\bhttps?://\S+"
_DATABASE = r"\.(?:db|sqlite3?)\b|\bdatabases?\b"
_MENTION = r"\b(?:mention|contain)\w*"
_WRITE = rf"\b(?:write|save|store)\b[^?!\n]*?\b(?:to|in|into)\s+{_FILE}|\boverwrite\s+{_FILE}"
_PYTHON = r"\bpython\b(?!\s+files?\b)|\bscript\b(?!\.\w)|\b(?:run|execute)\b[\w ]{0,12}\bcode\b"
ARITHMETIC = re.compile(r"\d\s*(?:\*\*|[-+*/%^])\s*[\d(]")
"""An arithmetic expression: a digit, an operator, then a digit or a bracket (``2**10``)."""
_MATH_WORDS = r"\b(?:compute|calculate|add up|sum|total|average|square root|sqrt|percent)\b"


def _cue(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


TOOL_CUES: dict[str, re.Pattern[str]] = {
    "http_get": _cue(_URL),
    "python": _cue(_PYTHON),
    "sqlite_query": _cue(rf"{_DATABASE}|\bsql\b|\btables?\b"),
    # "my notes" without a file name are what the user told or gave the agent: its memory.
    "memory_search": _cue(
        r"\b(?:memory|memories|remember\w*|recall\w*)\b|\bi told you\b|\bmy notes\b(?!\.)"
    ),
    "search_files": _cue(rf"{_MENTION}|\bsearch\w*|\bgrep\b|\blook for\b"),
    "write_file": _cue(_WRITE),
    "read_file": _cue(rf"\b(?:read|open)\b|(?<!\bto )(?<!\binto ){_FILE}"),  # not a target
    "calculator": _cue(rf"{ARITHMETIC.pattern}|\d\s*%|{_MATH_WORDS}"),
    "list_files": _cue(
        r"\blist\w*|\b(?:which|what) (?:of (?:my|the) )?files\b|\bfolders?\b|\bdirector(?:y|ies)\b"
    ),
}
"""The words that name each tool, in precedence order: the first tool whose cue matches wins.

Specific cues come before general ones, so "Which of my files mention TODO?" is a search, not a
listing, and "Use Python to compute 2**100" is python, not calculator.
"""

STRONG_CUES: dict[str, re.Pattern[str]] = {
    "write_file": TOOL_CUES["write_file"],
    "sqlite_query": _cue(_DATABASE),
    "http_get": TOOL_CUES["http_get"],
    "search_files": _cue(_MENTION),
}
"""Cues so unambiguous that a plan without their tool is missing a step."""

_CLAUSE_BREAK = re.compile(r"[.?!;](?=\s|$)|,?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_JOIN = re.compile(r",?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)


def cued_tool(text: str, available: Collection[str]) -> str | None:
    """Return the first tool of ``available`` whose cue ``text`` holds, in precedence order."""
    for tool, cue in TOOL_CUES.items():
        if tool in available and cue.search(text):
            return tool
    return None


def cued_actions(goal: str, available: Collection[str]) -> list[str]:
    """Return the tools the goal's actions are cued for: none, one, or two joined actions.

    Two tools come back when an " and " or " then " joins two parts cued for different tools, e.g.
    "Compute 37*43 and write the result to result.txt" gives ``["calculator", "write_file"]``.
    """
    for join in _JOIN.finditer(goal):
        first = cued_tool(goal[: join.start()], available)
        second = cued_tool(goal[join.end() :], available)
        if first and second and first != second:
            return [first, second]
    tool = cued_tool(goal, available)
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
