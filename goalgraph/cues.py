"""Tool cues: the words of a goal that name the tool it needs, from the tools' own hints.

A goal may also forbid a tool in words: "... Do not open any database." The tools it names after
a negation in the same part of a sentence (``forbidden_tools``) never get a step added for them.
A goal that only asks questions (``asks_only_questions``) asks for no change, which the safety
layer reads (``SafetySpec.confirm_unasked_writes``).

The bundled model copies the tool of the planning example it is shown, so under the ``tiny``
profile the example is chosen by these cues first (``goalgraph.prompts.plan_examples``), and a plan
that ignores a strong cue gets a step for it (``goalgraph.plan.add_cued_steps``). The cues come
from each tool's hints (``goalgraph.hints``); everything here is a pure function of text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from goalgraph.hints import ToolHints

__all__ = ["asks_only_questions", "cue_clause", "cued_actions", "cued_tool", "forbidden_tools"]

_CLAUSE_BREAK = re.compile(r"[.?!;](?=\s|$)|,?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_JOIN = re.compile(r",?\s+(?:and\s+then|and|then)\s+", re.IGNORECASE)
_SCOPE_BREAK = re.compile(
    r"[.?!;:,–—](?=\s|$)|\s+-\s+|\s+(?:and\s+then|and|then|but|instead)\s+", re.IGNORECASE
)
"""Where a negation's reach ends: "Don't read it, just write the URL to url.txt" forbids
reading, not writing."""
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
_REQUEST = re.compile(r"^\W*(?:can|could|would|will)\s+(?:you|u)\b|\bplease\b", re.IGNORECASE)
"""A question that asks the agent to do something: "Can you jot down ... in reminders.txt?"."""
_NEGATION = re.compile(r"\b(?:not|never|without|avoid\w*|nor)\b|n['’]t\b", re.IGNORECASE)


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


def forbidden_tools(goal: str, hints: Mapping[str, ToolHints]) -> set[str]:
    """Return the tools ``goal`` tells the agent not to use.

    A tool is forbidden when a negation ("not", "never", "without", "don't", "avoid") comes
    before words that name it in the same part of a sentence: its cue, its strong cue, or the
    verb its worked example starts with ("Fetch https://example.com" names ``http_get`` by
    "fetch", so "... do not fetch it" forbids it). "Which files mention the database password?
    Do not open any database." forbids ``sqlite_query`` with goalgraph's own tools, though its
    first sentence names a database too: the user's prohibition wins.
    """
    forbidden: set[str] = set()
    for part in _SCOPE_BREAK.split(goal):
        negation = _NEGATION.search(part or "")
        if negation is None:
            continue
        after = part[negation.end() :]
        for tool, hint in hints.items():
            if any(name.search(after) for name in _names(hint)):
                forbidden.add(tool)
    return forbidden


def _names(hint: ToolHints) -> list[re.Pattern[str]]:
    """The patterns of the words that name a tool: its cues and its example's verb."""
    names = [cue for cue in (hint.cue, hint.strong_cue) if cue is not None]
    verb = re.match(r"[A-Za-z]+", hint.example.step) if hint.example else None
    if verb:
        names.append(re.compile(rf"\b{verb.group().lower()}\w*", re.IGNORECASE))
    return names


def asks_only_questions(goal: str) -> bool:
    """Tell whether every sentence of ``goal`` is a question that asks for no action.

    "Which orders are still waiting to go out?" only asks; "Can you jot down 'dentist' in
    reminders.txt?" and "What is 2+2? Save it to a.txt." ask for an action too.
    """
    sentences = [part for part in _SENTENCE_END.split(goal.strip()) if part]
    return bool(sentences) and all(
        part.endswith("?") and not _REQUEST.search(part) for part in sentences
    )
