"""Tool cues: the words of a goal that name the tool it needs, from the tools' own hints.

The bundled model copies the tool of the planning example it is shown, so under the ``tiny``
profile the example is chosen by these cues first (``goalgraph.prompts.plan_examples``). Under
every profile a plan that ignores a strong cue gets a step for it
(``goalgraph.plan.add_cued_steps``), unless the goal forbids the tool in words ("... Do not open
any database.", ``forbidden_tools``); the safety layer asks a human before a call the goal forbids
(``prohibitions``, ``SafetySpec.confirm_forbidden_calls``). A goal that only asks questions
(``asks_only_questions``) asks for no change, which the safety layer reads too
(``SafetySpec.confirm_unasked_writes``). The cues
come from each tool's hints (``goalgraph.hints``); everything here is a pure function of text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from goalgraph.hints import ToolHints

__all__ = [
    "Prohibition",
    "asks_only_questions",
    "cue_clause",
    "cued_actions",
    "cued_tool",
    "forbidden_tools",
    "prohibitions",
]

_CLAUSE_BREAK = re.compile(r"[.?!;](?=\s|$)|,?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_JOIN = re.compile(r",?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_SCOPE_BREAK = re.compile(
    r"[.?!;:,–—](?=\s|$)|\s+-\s+|\s+(?:and\s+then|and|then|but|instead)\s+", re.IGNORECASE
)
"""Where a prohibition's reach ends: "Don't read it, just write the URL to url.txt" forbids
reading, not writing."""
_PROHIBITION = re.compile(
    r"^\W*(?:(?:please|and|but|just|also|so|then)\s+)*"
    r"(?:(?:you\s+)?(?:do\s+not|don['’]?t|must\s+not|mustn['’]t|should\s+not"
    r"|shouldn['’]t|may\s+not|can\s*not|can['’]t|never)|no\s+need\s+to|avoid\w*)\b"
    r"(?!\s+(?:forget|fail|hesitate)\b)"
    r"|\bwithout\b",
    re.IGNORECASE,
)
"""A prohibition: a part of a sentence that opens with "do not", "don't", "never", "no need to",
"avoid" and the like ("don't forget to" is none), or "without" anywhere. A "not" inside a part
describes instead of forbids: "Which files do not mention Berlin?", "If the total isn't zero"."""
_OBJECT = re.compile(
    r"https?://[^\s'\"]+[^\s'\".,;:!?)]"
    r"|'([^'\n]{1,120})'|\"([^\"\n]{1,120})\"|“([^”\n]{1,120})”"
    r"|(?<![\w./-])[\w-]+(?:[./][\w-]+)*\.[A-Za-z]\w{0,5}(?![\w/])"
)
"""What a prohibition may name as its object: a URL, a quoted text, or a file name ("a.txt",
"notes/todo.md")."""
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_REQUEST = re.compile(
    r"\b(?:can|could|would|will)\s+(?:you|u|it\s+be\s+possible)\b|\bplease\b|\bwhy\s+not\b",
    re.IGNORECASE,
)
"""A question that asks the agent to do something: "Hey, can you save 'dentist' to
reminders.txt?", "Would it be possible to save it?", "Why not save it to a.txt?"."""


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


@dataclass(frozen=True)
class Prohibition:
    """A goal's words telling the agent not to use a tool, or not on some objects."""

    tool: str
    """The tool named."""
    objects: tuple[str, ...] = ()
    """The URLs, quoted texts and file names the prohibition names ("Don't overwrite a.txt");
    none: the tool itself is forbidden ("Do not fetch it.")."""

    def covers(self, args: Mapping[str, Any]) -> bool:
        """Whether a call of the tool with ``args`` does what this forbids: any call when no
        object is named, else a call whose arguments name one of the objects."""
        if not self.objects:
            return True
        text = json.dumps(args, ensure_ascii=False, default=str).casefold()
        return any(
            re.search(rf"(?<![\w-]){re.escape(item.casefold())}(?![\w-])", text)
            for item in self.objects
        )


def prohibitions(goal: str, hints: Mapping[str, ToolHints]) -> list[Prohibition]:
    """Return what ``goal`` tells the agent not to do, one ``Prohibition`` per tool named.

    A tool is named when a part of a sentence is a prohibition ("Do not ...", "Don't ...",
    "Never ...", "No need to ...", "Avoid ...", or "without" anywhere in it) and names the tool
    after it, by its strong cue or by the verb its worked example starts with, unless another
    tool's example starts with it too: "Fetch https://example.com" names ``http_get`` by
    "fetch", so "... Do not fetch it." forbids it. A tool's plain cue is too broad for this (any
    file name cues ``read_file``). The URLs, quoted texts and file names after the prohibition
    are its objects: "Don't overwrite a.txt; write to b.txt" forbids writing ``a.txt``.
    """
    verbs = _example_verbs(hints)
    found: dict[str, list[str] | None] = {}
    for part in _SCOPE_BREAK.split(goal):
        prohibition = _PROHIBITION.search(part)
        if prohibition is None:
            continue
        after = part[prohibition.end() :]
        objects = [next(filter(None, m.groups()), m.group()) for m in _OBJECT.finditer(after)]
        for tool, hint in hints.items():
            names = [hint.strong_cue, verbs.get(tool)]
            if not any(name is not None and name.search(after) for name in names):
                continue
            if not objects or found.get(tool, []) is None:
                found[tool] = None  # The whole tool is forbidden.
            else:
                found[tool] = [*(found.get(tool) or []), *objects]
    return [
        Prohibition(tool, tuple(dict.fromkeys(objects or ()))) for tool, objects in found.items()
    ]


def forbidden_tools(goal: str, hints: Mapping[str, ToolHints]) -> set[str]:
    """Return the tools ``goal`` tells the agent not to use, on anything (``prohibitions``).

    "Which files mention the database password? Do not open any database." forbids
    ``sqlite_query`` with goalgraph's own tools, though its first sentence names a database too:
    the prohibition wins. For planning, a prohibition of one object forbids the tool too
    ("Don't overwrite a.txt; write to b.txt" forbids the writing tool); the safety layer reads
    the objects (``Prohibition.covers``).
    """
    return {prohibition.tool for prohibition in prohibitions(goal, hints)}


def _example_verbs(hints: Mapping[str, ToolHints]) -> dict[str, re.Pattern[str]]:
    """Each tool's example verb ("Fetch" of "Fetch https://example.com"), when no other tool's
    example starts with the same verb, as a pattern of its word forms."""
    verbs: dict[str, str] = {}
    for tool, hint in hints.items():
        verb = re.match(r"[A-Za-z]+", hint.example.step) if hint.example else None
        if verb:
            verbs[tool] = verb.group().casefold()
    shared = {verb for verb in verbs.values() if list(verbs.values()).count(verb) > 1}
    return {
        tool: re.compile(rf"\b{verb}\w*", re.IGNORECASE)
        for tool, verb in verbs.items()
        if verb not in shared
    }


def asks_only_questions(goal: str) -> bool:
    """Tell whether every sentence of ``goal`` is a question that asks for no action.

    "Which orders are still waiting to go out?" only asks; "Can you jot down 'dentist' in
    reminders.txt?" and "What is 2+2? Save it to a.txt." ask for an action too. Other forms of
    a question ("Which orders are waiting? Thanks!") count as not only asking, so the safety
    rule that reads this (``SafetySpec.confirm_unasked_writes``) errs towards not asking.
    """
    sentences = [part for part in _SENTENCE_END.split(goal.strip()) if part]
    return bool(sentences) and all(
        part.endswith("?") and not _REQUEST.search(part) for part in sentences
    )
