"""Pure functions over the plan: its schema, building steps, picking the next step, rendering.

Nothing here calls a model or touches state storage, so every rule is unit-testable on its own.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from goalgraph.cues import asks_only_questions, cue_clause, forbidden_tools
from goalgraph.hints import ToolHints
from goalgraph.state import PlanStep

__all__ = [
    "MAX_PLAN_STEPS",
    "NO_TOOL",
    "add_cued_steps",
    "drop_unasked_changes",
    "fallback_plan",
    "is_fallback_step",
    "next_step_id",
    "plan_schema",
    "ready_steps",
    "render_plan",
    "restated_as_action",
    "steps_from_output",
]

MAX_PLAN_STEPS = 5
"""Most steps a plan may have; a model profile may allow fewer (``goalgraph.profiles``)."""
NO_TOOL = "none"

_STATEMENT = re.compile(
    r"^\W*(?:the|a|an|this|that|these|those|it|its|there|their|here)\b|:\s*$|^[^a-z]*$",
    re.IGNORECASE,
)
"""A step that states instead of acts: it opens like a sentence about a thing ("The square root
of 1764 is 176.4", "A jacket costs 80 dollars"), ends in a colon, or has no words at all."""


_RENDERED_TOOL = re.compile(r"\s*\(tool: [^()]*\)\s*$")
"""The ``(tool: name)`` suffix ``render_plan`` puts after a step."""


def plan_schema(
    tool_names: Sequence[str], *, max_steps: int = MAX_PLAN_STEPS, first_tool: str | None = None
) -> dict[str, Any]:
    """Return the JSON schema of a plan of at most ``max_steps`` steps over the given tools.

    Step ids are assigned by goalgraph, not by the model, so they are always unique; the ``tool``
    field is an enum of the live tool names (or ``"none"``), so a plan cannot name a missing tool.
    With ``first_tool``, the first step uses that tool, named before its description, so the
    model describes a step of that tool (the ``plan_first_call`` profile rule).
    """
    schema = _plan_schema(tool_names, max_steps)
    if first_tool is not None:
        steps = schema["properties"]["steps"]
        item = steps["items"]
        rest = {key: value for key, value in item["properties"].items() if key != "tool"}
        steps["prefixItems"] = [
            {
                **item,
                "properties": {"tool": {"const": first_tool}, **rest},
                "required": ["tool", *rest],
            }
        ]
    return schema


def _plan_schema(tool_names: Sequence[str], max_steps: int) -> dict[str, Any]:
    return {
        "title": "Plan",
        "description": "A short plan: the steps that reach the goal, in order.",
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "maxLength": 160},
                        "tool": {"type": "string", "enum": [*tool_names, NO_TOOL]},
                        "depends_on": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1},
                            "maxItems": max_steps,
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
    output: Any,
    *,
    first_id: int = 1,
    known_ids: Iterable[int] = (),
    tool_names: Sequence[str],
    goal: str | None = None,
    hints: Mapping[str, ToolHints] | None = None,
    copied: Collection[str] = (),
    max_steps: int = MAX_PLAN_STEPS,
) -> list[PlanStep]:
    """Turn a model's plan output into at most ``max_steps`` sanitised ``PlanStep``s numbered
    from ``first_id``.

    A dependency is kept only when it points at a known step or an earlier step of this output
    (``depends_on`` is numbered within the output, 1-based), so the plan can never deadlock.
    Unknown tools become ``None``; empty and repeated descriptions are dropped, and a dependency on
    a repeat points at the step it repeats. With ``goal``, a step that states an answer instead of
    an action is restated in the goal's words (``restated_as_action``, with the tools' ``hints``),
    and so is a step that copies a step of the planning example shown (one of ``copied``).

    Raises:
        ValueError: if the output holds no usable step.
    """
    raw_steps = output.get("steps") if isinstance(output, dict) else None
    if not isinstance(raw_steps, list):
        raise ValueError("the plan has no 'steps' list")
    raw_steps = [raw for raw in raw_steps[:max_steps] if isinstance(raw, dict)]
    known = set(known_ids)
    steps: list[PlanStep] = []
    id_at: dict[int, int] = {}  # 1-based position in the output -> the id of its step
    for position, raw in enumerate(raw_steps, start=1):
        tool = raw.get("tool") if raw.get("tool") in tool_names else None
        # A model may copy the "(tool: name)" that rendered plans show after each step.
        description = _RENDERED_TOOL.sub("", str(raw.get("description") or "")).strip()
        if description and goal is not None:
            description = restated_as_action(
                description,
                tool,
                goal,
                alone=len(raw_steps) == 1,
                hints=hints or {},
                copied=copied,
            )
        if not description:
            continue
        repeated = [step for step in steps if step["description"] == description]
        if repeated:  # A repeated step is a small model padding the plan, not a new step.
            id_at[position] = repeated[0]["id"]
            continue
        step_id = first_id + len(steps)
        id_at[position] = step_id
        depends: list[int] = []
        for dep in raw.get("depends_on") or []:
            target = id_at.get(dep) if isinstance(dep, int) else None
            if target is None and isinstance(dep, int) and dep in known:
                target = dep
            if target is not None and target != step_id and target not in depends:
                depends.append(target)
        steps.append(
            PlanStep(
                id=step_id,
                description=description,
                tool=tool,
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


def restated_as_action(
    description: str,
    tool: str | None,
    goal: str,
    *,
    alone: bool,
    hints: Mapping[str, ToolHints],
    copied: Collection[str] = (),
) -> str:
    """Return ``description``, or the goal's words for it when it states instead of acts or
    copies a step of the planning example (one of ``copied``) that the goal does not hold.

    The bundled model often plans the answer it guesses ("The square root of 1764 is 176.4"),
    and the call then copies the guess (``calculator("176.4")``). Such a step becomes the goal
    itself when it is the plan's only step, else the goal's clause that cues its tool (by the
    tool's ``hints``: "Count the orders in shop.db" of "Count the orders in shop.db and write the
    number to orders.txt") when that clause is an action, else the goal.
    """
    if not _STATEMENT.search(description) and not _copied(description, goal, copied):
        return description
    cue = hints[tool].cue if tool is not None and tool in hints else None
    clause = cue_clause(goal, cue) if cue is not None and not alone else None
    if clause is None or _STATEMENT.search(clause):  # "It is set in config.yaml" says no action.
        clause = goal.strip()
    return clause[:300]


def _copied(description: str, goal: str, copied: Collection[str]) -> bool:
    """Whether ``description`` is one of the ``copied`` example steps, and not the goal's words."""
    text = description.casefold()
    return text not in goal.casefold() and any(text == step.casefold() for step in copied)


def add_cued_steps(
    steps: list[PlanStep],
    goal: str,
    hints: Mapping[str, ToolHints],
    *,
    max_steps: int = MAX_PLAN_STEPS,
) -> list[PlanStep]:
    """Return ``steps`` plus a step for each available tool (a key of ``hints``) whose strong cue
    the goal holds but no step uses.

    A small model plans "Compute 37*43 and write the result to result.txt" as one calculator step,
    so the file is never written. A strong cue (a file to write to, a database, a URL, "mentions")
    of an available tool that no step names adds a step doing the goal's clause with that cue,
    after the last step and in the goal's order, as long as the plan stays within
    ``max_steps``. A step that already does it gets the tool instead of a copy: a tool-less step
    that is that clause, or a step whose words hold the strong cue but not its own tool's cue
    ("Write hello to greeting.txt" planned with ``python``). A tool the goal forbids ("... Do
    not open any database.", ``goalgraph.cues.forbidden_tools``) is never added.
    """
    missing = []
    forbidden = forbidden_tools(goal, hints)
    for tool, hint in hints.items():
        if hint.strong_cue is None or tool in forbidden:
            continue
        found = hint.strong_cue.search(goal)
        if found and all(step["tool"] != tool for step in steps):
            missing.append((found.start(), tool, hint.strong_cue))
    steps = [PlanStep(**step) for step in steps]
    for _, tool, strong in sorted(missing, key=lambda item: item[0]):
        description = (cue_clause(goal, strong) or goal)[:160]
        same = [
            step
            for step in steps
            if (not step["tool"] and step["description"] == description)
            or (strong.search(step["description"]) and not _cues_own_tool(step, hints))
        ]
        if same:  # The step is planned, without this tool: give it the tool, not a copy.
            same[0]["tool"] = tool
            continue
        if not steps or len(steps) >= max_steps:
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


def _cues_own_tool(step: PlanStep, hints: Mapping[str, ToolHints]) -> bool:
    """Whether the step's words hold the cue of the tool it is planned with."""
    hint = hints.get(step["tool"] or "")
    return bool(hint and hint.cue and hint.cue.search(step["description"]))


_FALLBACK_STEP_CHARS = 300
"""The most of the goal that ``fallback_plan``'s one step describes."""


def drop_unasked_changes(
    steps: list[PlanStep], goal: str, changing_tools: Collection[str], *, first_id: int = 1
) -> list[PlanStep]:
    """Return ``steps`` without the steps planned with a tool that changes things (one of
    ``changing_tools``) when ``goal`` only asks questions (``cues.asks_only_questions``),
    renumbered from ``first_id``; the goal as one step if none is left.

    Asked "Which orders are still waiting to go out?", Qwen2.5-Coder-0.5B planned ``list_orders``
    and then three ``place_order`` steps: a small model walks the tool catalog. Such a call waits
    for a human anyway (``SafetySpec.confirm_unasked_writes``), so the step can only stall the run.
    """
    if not asks_only_questions(goal):
        return steps
    kept = [step for step in steps if step["tool"] not in changing_tools]
    if len(kept) == len(steps):
        return steps
    if not kept:
        return fallback_plan(goal, first_id=first_id)
    new_id = {step["id"]: first_id + index for index, step in enumerate(kept)}
    return [
        PlanStep(
            **{
                **step,
                "id": new_id[step["id"]],
                # A dependency on a dropped step goes; one on an earlier plan's step stays.
                "depends_on": [
                    new_id.get(dep, dep)
                    for dep in step["depends_on"]
                    if dep in new_id or dep < first_id
                ],
            }
        )
        for step in kept
    ]


def fallback_plan(goal: str, *, first_id: int = 1) -> list[PlanStep]:
    """Return the one-step plan used when the planner fails: pursue the goal directly."""
    return [
        PlanStep(
            id=first_id,
            description=goal[:_FALLBACK_STEP_CHARS],
            tool=None,
            depends_on=[],
            success_criteria="the goal is answered",
            status="pending",
            attempts=0,
            result=None,
        )
    ]


def is_fallback_step(step: PlanStep, goal: str) -> bool:
    """Tell whether ``step`` is ``fallback_plan``'s: the goal itself, with no planned tool."""
    return step["tool"] is None and step["description"] == goal[:_FALLBACK_STEP_CHARS]


def next_step_id(plan: Sequence[PlanStep]) -> int | None:
    """Return the first pending step whose dependencies are all done, or ``None``."""
    done = {step["id"] for step in plan if step["status"] == "done"}
    for step in plan:
        if step["status"] == "pending" and all(dep in done for dep in step["depends_on"]):
            return step["id"]
    return None


def ready_steps(plan: Sequence[PlanStep]) -> list[int]:
    """Return every pending step whose dependencies are all done, in plan order: the steps that
    may run side by side (``next_step_id`` is the first of them)."""
    done = {step["id"] for step in plan if step["status"] == "done"}
    return [
        step["id"]
        for step in plan
        if step["status"] == "pending" and all(dep in done for dep in step["depends_on"])
    ]


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
