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

PLAN_INSTRUCTIONS = """You plan how to reach a goal with tools. Write 1 to 3 short steps.
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


TOOL_EXAMPLES: dict[str, ToolExample] = {
    "calculator": ToolExample("What is 7*(2+5)?", "Compute 7*(2+5)", {"expression": "7*(2+5)"}),
    "read_file": ToolExample("Show me todo.md", "Read todo.md", {"path": "todo.md"}),
    "list_files": ToolExample("Which files do I have?", "List the files", {"path": "."}),
    "memory_search": ToolExample(
        "What do my notes say about my sister?", "Search memory for my sister", {"query": "sister"}
    ),
    "write_file": ToolExample(
        "Save 'buy milk' in list.txt",
        "Write buy milk to list.txt",
        {"path": "list.txt", "content": "buy milk"},
    ),
}
"""Examples for goalgraph's own tools; a few-shot prompt only shows those of available tools."""

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


_ARITHMETIC = re.compile(r"\d\s*(\*\*|[-+*/%^])\s*[\d(]")


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower())
    found = {word.rstrip("s") for word in words if len(word) > 2 and word not in _STOPWORDS}
    if _ARITHMETIC.search(text):
        found.add("arithmetic")  # "2**10" relates a goal to an arithmetic tool.
    return found


def plan_examples(goal: str, tools: Sequence[BaseTool], *, limit: int = 2) -> list[tuple[str, str]]:
    """Return ``(goal, plan JSON)`` demonstrations for the tools most related to ``goal``.

    A small model copies the tool of the nearest example, so examples are chosen by word overlap
    between ``goal`` and each tool's name (counted twice), description and example, and the most
    related one is put last, right before the real goal.
    """
    goal_words = _words(goal)

    def overlap(tool: BaseTool) -> int:
        example = TOOL_EXAMPLES[tool.name]
        about = f"{tool.name.replace('_', ' ')} {tool.description} {example.goal} {example.step}"
        name_words = _words(tool.name.replace("_", " "))
        return len(goal_words & _words(about)) + len(goal_words & name_words)

    known = [tool for tool in tools if tool.name in TOOL_EXAMPLES]
    ranked = sorted(known, key=overlap)[-limit:]
    pairs = []
    for tool in ranked:
        example = TOOL_EXAMPLES[tool.name]
        step = {
            "description": example.step,
            "tool": tool.name,
            "depends_on": [],
            "success_criteria": f"{tool.name} succeeds",
        }
        pairs.append((example.goal, json.dumps({"steps": [step]}, separators=(",", ":"))))
    return pairs
