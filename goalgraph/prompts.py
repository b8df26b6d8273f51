"""Prompt text for the nodes that call the model.

Prompts are short on purpose: the bundled model has 135M parameters and this CPU prefills about
300 tokens per second, so every line costs time and attention. The decoding grammar, not the prompt,
guarantees the output's shape; the prompt only has to steer the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from langchain_core.tools import BaseTool

from goalgraph.cues import cued_actions
from goalgraph.hints import ToolExample, tool_hints
from goalgraph.tools.hints import ARITHMETIC

__all__ = [
    "CALL_INSTRUCTIONS",
    "FINISH_INSTRUCTIONS",
    "FIRST_CALL_INSTRUCTIONS",
    "PARALLEL_CALLS",
    "PLAN_INSTRUCTIONS",
    "PLAN_SCOPE",
    "REPLAN_INSTRUCTIONS",
    "THINK_INSTRUCTIONS",
    "plan_examples",
    "render_tool_catalog",
]

PLAN_INSTRUCTIONS = """You plan how to reach a goal with tools. Write 1 to {max_steps} short steps.
Give each step the tool that does it, or "none". Use the fewest steps.{scope}
Tools:
{tools}
{examples}"""

PLAN_SCOPE = """
Plan only what the goal asks. Use the facts the goal states; read, write or fetch only what it
names. Every action the goal asks for, such as saving a result, gets its own step.
If one tool call answers the goal, the plan has one step."""
"""The scope note of the planner's instructions (the ``plan_scope`` profile rule)."""


FIRST_CALL_INSTRUCTIONS = """You are goalgraph, an agent that reaches goals by calling tools.
Call the tool that does the first thing the goal needs. If no tool is needed, call final_answer."""
"""Asks for the first call on a goal before planning (the ``plan_first_call`` profile rule)."""

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

PARALLEL_CALLS = """
When the step needs several calls that do not depend on each other, make them all at once."""
"""Added to the think instructions when a turn may propose several tool calls
(``limits.max_parallel_calls`` above 1)."""

RETRY_NOTE = "Do not repeat a call that failed: change its arguments or use another tool."
"""Follows the failure note of a turn whose tool call failed (the ``feedback_last`` profile
rule): told only what failed, Qwen2.5-Coder-0.5B made the same call again."""

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

    Only tools whose hints carry an example (``goalgraph.hints``) are shown. A small model copies
    the tool of the nearest example, so the most related example is put last, right before the
    real goal. It is the tool the goal's cue words name (``goalgraph.cues``), or for a goal joining
    two cued actions ("Compute 37*43 and write it to a.txt") a two-step example whose second step
    depends on the first. Without a cue, and for the other examples, tools rank by word overlap
    between ``goal`` and each tool's name (counted twice), description and example.
    """
    goal_words = _words(goal)
    hints = {name: hint for name, hint in tool_hints(tools).items() if hint.example is not None}
    examples = {name: hint.example for name, hint in hints.items() if hint.example is not None}

    def overlap(tool: BaseTool) -> int:
        example = examples[tool.name]
        about = f"{tool.name.replace('_', ' ')} {tool.description} {example.goal} {example.step}"
        name_words = _words(tool.name.replace("_", " "))
        return len(goal_words & _words(about)) + len(goal_words & name_words)

    known = [tool for tool in tools if tool.name in hints]
    ranked: list[tuple[str, ...]] = [(tool.name,) for tool in sorted(known, key=overlap)]
    cued = tuple(cued_actions(goal, hints))
    if cued:
        ranked = [names for names in ranked if names != cued[:1]] + [cued]
    return [_example(names, examples) for names in ranked[-limit:]] if limit > 0 else []


def _example(tools: Sequence[str], examples: Mapping[str, ToolExample]) -> tuple[str, str]:
    """Return the ``(goal, plan JSON)`` example of one tool, or of two in a row."""
    first, *rest = [examples[name] for name in tools]
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
