"""Pure functions over the plan: its schema, building steps, picking the next step, rendering.

Nothing here calls a model or touches state storage, so every rule is unit-testable on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from goalgraph.cues import STRONG_CUES, cue_clause
from goalgraph.state import PlanStep

__all__ = [
    "MAX_PLAN_STEPS",
    "NO_TOOL",
    "add_cued_steps",
    "fallback_plan",
    "next_step_id",
    "plan_schema",
    "render_plan",
    "steps_from_output",
]

MAX_PLAN_STEPS = 3
NO_TOOL = "none"


def plan_schema(tool_names: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema a plan must satisfy for the given tools.

    Step ids are assigned by goalgraph, not by the model, so they are always unique; the ``tool``
    field is an enum of the live tool names (or ``"none"``), so a plan cannot name a missing tool.
    """
    return {
        "title": "Plan",
        "description": "A short plan: the steps that reach the goal, in order.",
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PLAN_STEPS,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "maxLength": 160},
                        "tool": {"type": "string", "enum": [*tool_names, NO_TOOL]},
                        "depends_on": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1},
                            "maxItems": MAX_PLAN_STEPS,
                        },
                        "success_criteria": {"type": "string", "maxLength": 120},
                    },
                    "required": ["description", "tool", "depends_on", "success_criteria"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def steps_from_output(
    output: Any, *, first_id: int = 1, known_ids: Iterable[int] = (), tool_names: Sequence[str]
) -> list[PlanStep]:
    """Turn a model's plan output into sanitised ``PlanStep``s numbered from ``first_id``.

    A dependency is kept only when it points at a known step or an earlier step of this output
    (``depends_on`` is numbered within the output, 1-based), so the plan can never deadlock.
    Unknown tools become ``None``; empty and repeated descriptions are dropped.

    Raises:
        ValueError: if the output holds no usable step.
    """
    raw_steps = output.get("steps") if isinstance(output, dict) else None
    if not isinstance(raw_steps, list):
        raise ValueError("the plan has no 'steps' list")
    known = set(known_ids)
    steps: list[PlanStep] = []
    for raw in raw_steps[:MAX_PLAN_STEPS]:
        if not isinstance(raw, dict):
            continue
        description = str(raw.get("description") or "").strip()
        if not description or any(step["description"] == description for step in steps):
            continue  # A repeated step is a small model padding the plan, not a new step.
        step_id = first_id + len(steps)
        local_to_id = {n: first_id + n - 1 for n in range(1, len(steps) + 1)}
        depends: list[int] = []
        for dep in raw.get("depends_on") or []:
            target = local_to_id.get(dep) if isinstance(dep, int) else None
            if target is None and isinstance(dep, int) and dep in known:
                target = dep
            if target is not None and target != step_id and target not in depends:
                depends.append(target)
        tool = raw.get("tool")
        steps.append(
            PlanStep(
                id=step_id,
                description=description,
                tool=tool if tool in tool_names else None,
                depends_on=depends,
                success_criteria=str(raw.get("success_criteria") or "").strip(),
                status="pending",
                attempts=0,
                result=None,
            )
        )
    if not steps:
        raise ValueError("the plan has no step with a description")
    return steps


def add_cued_steps(steps: list[PlanStep], goal: str, tool_names: Sequence[str]) -> list[PlanStep]:
    """Return ``steps`` plus a step for each tool the goal strongly cues but no step uses.

    A small model plans "Compute 37*43 and write the result to result.txt" as one calculator step,
    so the file is never written. A strong cue (a file to write to, a database, a URL, "mentions")
    of an available tool that no step names adds a step doing the goal's clause with that cue,
    after the last step and in the goal's order, as long as the plan stays within
    ``MAX_PLAN_STEPS``; a tool-less step that already is that clause gets the tool instead.
    """
    missing = []
    for tool, cue in STRONG_CUES.items():
        found = cue.search(goal)
        if found and tool in tool_names and all(step["tool"] != tool for step in steps):
            missing.append((found.start(), tool))
    steps = [PlanStep(**step) for step in steps]
    for _, tool in sorted(missing):
        description = (cue_clause(goal, STRONG_CUES[tool]) or goal)[:160]
        same = [step for step in steps if not step["tool"] and step["description"] == description]
        if same:  # The step is planned, without its tool: give it the tool, not a copy.
            same[0]["tool"] = tool
            continue
        if not steps or len(steps) >= MAX_PLAN_STEPS:
            continue
        last = steps[-1]
        steps.append(
            PlanStep(
                id=last["id"] + 1,
                description=description,
                tool=tool,
                depends_on=[last["id"]],
                success_criteria=f"{tool} succeeds",
                status="pending",
                attempts=0,
                result=None,
            )
        )
    return steps


def fallback_plan(goal: str, *, first_id: int = 1) -> list[PlanStep]:
    """Return the one-step plan used when the planner fails: pursue the goal directly."""
    return [
        PlanStep(
            id=first_id,
            description=goal[:300],
            tool=None,
            depends_on=[],
            success_criteria="the goal is answered",
            status="pending",
            attempts=0,
            result=None,
        )
    ]


def next_step_id(plan: Sequence[PlanStep]) -> int | None:
    """Return the first pending step whose dependencies are all done, or ``None``."""
    done = {step["id"] for step in plan if step["status"] == "done"}
    for step in plan:
        if step["status"] == "pending" and all(dep in done for dep in step["depends_on"]):
            return step["id"]
    return None


def render_plan(plan: Sequence[PlanStep], current: int | None = None) -> str:
    """Render the plan as short numbered lines, marking status, results and the current step."""
    lines = []
    for step in plan:
        marker = "->" if step["id"] == current else "  "
        line = f"{marker} {step['id']}. [{step['status']}] {step['description']}"
        if step["tool"]:
            line += f" (tool: {step['tool']})"
        if step["result"]:
            line += f" => {step['result'][:200]}"
        lines.append(line)
    return "\n".join(lines)
