"""Prompt text for the nodes that call the model.

Prompts are short on purpose: the bundled model has 135M parameters and this CPU prefills about
300 tokens per second, so every line costs time and attention. The decoding grammar, not the prompt,
guarantees the output's shape; the prompt only has to steer the content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.tools import BaseTool

__all__ = [
    "CALL_INSTRUCTIONS",
    "FINISH_INSTRUCTIONS",
    "PLAN_INSTRUCTIONS",
    "REPLAN_INSTRUCTIONS",
    "THINK_INSTRUCTIONS",
    "render_tool_catalog",
]

PLAN_INSTRUCTIONS = """You plan how to reach a goal with tools. Write 1 to 3 short steps.
Give each step the tool that does it, or "none". Use the fewest steps.
Tools:
{tools}

Example goal: What is 7*(2+5)?
Example plan: {example}"""

_EXAMPLE_PLAN = {
    "steps": [
        {
            "description": "Compute 7*(2+5) with the calculator",
            "tool": "calculator",
            "depends_on": [],
            "success_criteria": "the calculator returns a number",
        }
    ]
}

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


def example_plan_json() -> str:
    """Return the planner's few-shot example as compact JSON."""
    return json.dumps(_EXAMPLE_PLAN, separators=(",", ":"))
