"""The planning hints of goalgraph's own tools, sent to clients in each tool's MCP ``_meta``.

A hint says which words of a goal name the tool (its cue, as a regular expression), whether that
cue is so unambiguous that a plan without the tool misses a step (its strong cue), where the cue
ranks against other tools' cues (specific before general), and a worked example of the tool. The
agent reads them from any server's tools (``goalgraph.hints``), so a third-party tool can bring
its own; the profile rules use them (``goalgraph.profiles``): ``cued_steps`` in every profile,
the planning example and restated steps only under ``tiny``.

This module is data for the server process: it imports nothing from LangChain.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ARITHMETIC", "BUILTIN_HINTS", "HINTS_META_KEY", "hint_payload"]

HINTS_META_KEY = "goalgraph/hints"
"""``_meta`` key of a tool's planning hints."""

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


def hint_payload(
    *,
    rank: int,
    cue: str | None = None,
    strong_cue: str | None = None,
    example: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the JSON a tool's ``_meta`` carries under ``HINTS_META_KEY``.

    Args:
        rank: Precedence of the cue: the lowest-ranked tool whose cue a text holds is cued.
        cue: A case-insensitive regular expression of the words that name the tool.
        strong_cue: A cue so unambiguous that a plan without the tool misses a step.
        example: ``goal``, ``step``, ``args`` and optionally ``then`` (the step when it follows
            another step and uses its result).
    """
    payload: dict[str, Any] = {"rank": rank}
    if cue:
        payload["cue"] = cue
    if strong_cue:
        payload["strong_cue"] = strong_cue
    if example:
        payload["example"] = example
    return payload


def _example(goal: str, step: str, args: dict[str, Any], then: str = "") -> dict[str, Any]:
    return {"goal": goal, "step": step, "args": args, "then": then}


BUILTIN_HINTS: dict[str, dict[str, Any]] = {
    "http_get": hint_payload(
        rank=10,
        cue=_URL,
        strong_cue=_URL,
        example=_example(
            "What does https://example.com say?",
            "Fetch https://example.com",
            {"url": "https://example.com"},
        ),
    ),
    "python": hint_payload(
        rank=20,
        cue=_PYTHON,
        example=_example(
            "Use Python to list the even numbers below 20",
            "Print the even numbers below 20 in Python",
            {"code": "print([n for n in range(20) if n % 2 == 0])"},
        ),
    ),
    "sqlite_query": hint_payload(
        rank=30,
        cue=rf"{_DATABASE}|\bsql\b|\btables?\b",
        strong_cue=_DATABASE,
        example=_example(
            "List the names in the users table of app.db",
            "Select the names from users in app.db",
            {"database": "app.db", "sql": "SELECT name FROM users"},
        ),
    ),
    # "my notes" without a file name are what the user told or gave the agent: its memory.
    "memory_search": hint_payload(
        rank=40,
        cue=r"\b(?:memory|memories|remember\w*|recall\w*)\b|\bi told you\b|\bmy notes\b(?!\.)",
        example=_example(
            "What do my notes say about my sister?",
            "Search memory for my sister",
            {"query": "sister"},
        ),
    ),
    "search_files": hint_payload(
        rank=50,
        cue=rf"{_MENTION}|\bsearch\w*|\bgrep\b|\blook for\b",
        strong_cue=_MENTION,
        example=_example(
            "Which notes contain the word invoice?",
            "Search the files for invoice",
            {"query": "invoice"},
        ),
    ),
    "write_file": hint_payload(
        rank=60,
        cue=_WRITE,
        strong_cue=_WRITE,
        example=_example(
            "Save 'buy milk' in list.txt",
            "Write buy milk to list.txt",
            {"path": "list.txt", "content": "buy milk"},
            "Write the result to out.txt",
        ),
    ),
    "read_file": hint_payload(
        rank=70,
        cue=rf"\b(?:read|open)\b|(?<!\bto )(?<!\binto ){_FILE}",  # a file that is not a target
        example=_example(
            "Show me todo.md", "Read todo.md", {"path": "todo.md"}, "Read the file it found"
        ),
    ),
    "calculator": hint_payload(
        rank=80,
        cue=rf"{ARITHMETIC.pattern}|\d\s*%|{_MATH_WORDS}",
        example=_example(
            "What is 7*(2+5)?", "Compute 7*(2+5)", {"expression": "7*(2+5)"}, "Add up the numbers"
        ),
    ),
    "list_files": hint_payload(
        rank=90,
        cue=(
            r"\blist\w*|\b(?:which|what) (?:of (?:my|the) )?files\b"
            r"|\bfolders?\b|\bdirector(?:y|ies)\b"
        ),
        example=_example("Which files do I have?", "List the files", {"path": "."}),
    ),
}
"""The hints of every tool of goalgraph's own MCP server, by tool name.

Ranks put specific cues before general ones, so "Which of my files mention TODO?" is a search,
not a listing, and "Use Python to compute 2**100" is python, not calculator.
"""
