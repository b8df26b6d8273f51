"""Prompt text for the nodes that call the model.

Prompts are short on purpose: the bundled model has 135M parameters and this CPU prefills about
300 tokens per second, so every line costs time and attention. The decoding grammar, not the prompt,
guarantees the output's shape; the prompt only has to steer the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool

from goalgraph.cues import ARITHMETIC, cued_actions

__all__ = [
    "CALL_INSTRUCTIONS",
    "FINISH_INSTRUCTIONS",
    "PLAN_INSTRUCTIONS",
    "REPLAN_INSTRUCTIONS",
    "THINK_INSTRUCTIONS",
    "TOOL_EXAMPLES",
    "ToolExample",
    "plan_examples",
    "render_tool_catalog",
]

PLAN_INSTRUCTIONS = """You plan how to reach a goal with tools. Write 1 to {max_steps} short steps.
Give each step the tool that does it, or "none". Use the fewest steps.
Tools:
{tools}
{examples}"""


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


TOOL_EXAMPLES: dict[str, ToolExample] = {
    "calculator": ToolExample(
        "What is 7*(2+5)?", "Compute 7*(2+5)", {"expression": "7*(2+5)"}, "Add up the numbers"
    ),
    "read_file": ToolExample(
        "Show me todo.md", "Read todo.md", {"path": "todo.md"}, "Read the file it found"
    ),
    "list_files": ToolExample("Which files do I have?", "List the files", {"path": "."}),
    "memory_search": ToolExample(
        "What do my notes say about my sister?", "Search memory for my sister", {"query": "sister"}
    ),
    "write_file": ToolExample(
        "Save 'buy milk' in list.txt",
        "Write buy milk to list.txt",
        {"path": "list.txt", "content": "buy milk"},
        "Write the result to out.txt",
    ),
    "search_files": ToolExample(
        "Which notes contain the word invoice?",
        "Search the files for invoice",
        {"query": "invoice"},
    ),
    "sqlite_query": ToolExample(
        "List the names in the users table of app.db",
        "Select the names from users in app.db",
        {"database": "app.db", "sql": "SELECT name FROM users"},
    ),
    "http_get": ToolExample(
        "What does https://example.com say?",
        "Fetch https://example.com",
        {"url": "https://example.com"},
    ),
    "python": ToolExample(
        "Use Python to list the even numbers below 20",
        "Print the even numbers below 20 in Python",
        {"code": "print([n for n in range(20) if n % 2 == 0])"},
    ),
}
"""Examples for every tool of goalgraph's own MCP server; a prompt shows only available ones."""

REPLAN_INSTRUCTIONS = """A step of the plan failed. Write new steps for the rest of the goal.
Do not repeat what failed; try another way or another tool.
Tools:
{tools}"""

CALL_INSTRUCTIONS = """You are goalgraph. Call the tool for the current step.
Copy numbers, names and expressions exactly from the step."""

THINK_INSTRUCTIONS = """You are goalgraph, an agent that reaches goals by calling tools.
Work on the current step only. Call one tool that does it.
If the step is already finished, call step_done with its result.
If the goal is reached, call final_answer with the answer."""

FINISH_INSTRUCTIONS = """You are goalgraph. Every step of the plan is done.
Call final_answer with the answer to the goal, using the results below."""


def render_tool_catalog(tools: Sequence[BaseTool]) -> str:
    """List tools as ``- name(arg, ...): description`` lines for planner prompts."""
    lines = []
    for tool in tools:
        args = ", ".join(tool.args)
        description = (tool.description or "").strip().splitlines()[0] if tool.description else ""
        lines.append(f"- {tool.name}({args}): {description}")
    return "\n".join(lines) or "- (no tools)"


_STOPWORDS = {
    "the",
    "and",
    "for",
    "with",
    "what",
    "from",
    "into",
    "this",
    "that",
    "are",
    "you",
    "have",
    "which",
    "its",
    "your",
    "please",
    "then",
    "there",
    "their",
}


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower())
    found = {word.rstrip("s") for word in words if len(word) > 2 and word not in _STOPWORDS}
    if ARITHMETIC.search(text):
        found.add("arithmetic")  # "2**10" relates a goal to an arithmetic tool.
    return found


def plan_examples(goal: str, tools: Sequence[BaseTool], *, limit: int = 2) -> list[tuple[str, str]]:
    """Return ``(goal, plan JSON)`` demonstrations for the tools most related to ``goal``.

    A small model copies the tool of the nearest example, so the most related example is put last,
    right before the real goal. It is the tool the goal's cue words name (``goalgraph.cues``), or
    for a goal joining two cued actions ("Compute 37*43 and write it to a.txt") a two-step example
    whose second step depends on the first. Without a cue, and for the other examples, tools rank
    by word overlap between ``goal`` and each tool's name (counted twice), description and example.
    """
    goal_words = _words(goal)

    def overlap(tool: BaseTool) -> int:
        example = TOOL_EXAMPLES[tool.name]
        about = f"{tool.name.replace('_', ' ')} {tool.description} {example.goal} {example.step}"
        name_words = _words(tool.name.replace("_", " "))
        return len(goal_words & _words(about)) + len(goal_words & name_words)

    known = [tool for tool in tools if tool.name in TOOL_EXAMPLES]
    ranked: list[tuple[str, ...]] = [(tool.name,) for tool in sorted(known, key=overlap)]
    cued = tuple(cued_actions(goal, [tool.name for tool in known]))
    if cued:
        ranked = [names for names in ranked if names != cued[:1]] + [cued]
    return [_example(names) for names in ranked[-limit:]] if limit > 0 else []


def _example(tools: Sequence[str]) -> tuple[str, str]:
    """Return the ``(goal, plan JSON)`` example of one tool, or of two in a row."""
    first, *rest = [TOOL_EXAMPLES[name] for name in tools]
    descriptions = [first.step, *(example.then or example.step for example in rest)]
    goal = " and ".join([descriptions[0], *map(_lower, descriptions[1:])]) if rest else first.goal
    steps = [
        {
            "description": description,
            "tool": name,
            "depends_on": [number] if number else [],
            "success_criteria": f"{name} succeeds",
        }
        for number, (name, description) in enumerate(zip(tools, descriptions, strict=True))
    ]
    return goal, json.dumps({"steps": steps}, separators=(",", ":"))


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
