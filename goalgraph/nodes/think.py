"""think: choose the next action — a tool call, the end of the current step, or the final answer.

The model is bound to the live tool list plus two pseudo-tools, ``step_done`` and ``final_answer``;
a grammar-constrained model therefore cannot name a missing tool or emit malformed arguments.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from goalgraph.nodes.common import bump, current_step
from goalgraph.plan import render_plan
from goalgraph.policies import without_invented_optional
from goalgraph.profiles import ModelProfile
from goalgraph.prompts import (
    CALL_INSTRUCTIONS,
    FINISH_INSTRUCTIONS,
    PARALLEL_CALLS,
    RETRY_NOTE,
    THINK_INSTRUCTIONS,
)
from goalgraph.resources import AgentResources
from goalgraph.risk import ToolTraits
from goalgraph.safety import call_signature, reads_since_change
from goalgraph.state import ActionKind, AgentState, ProposedAction, turn_actions, turn_verdicts

__all__ = [
    "FINAL_ANSWER",
    "STEP_DONE",
    "actions_from_message",
    "limit_reached",
    "limit_stop",
    "make_think_node",
    "settled_by_repeat",
    "step_messages",
]

STEP_DONE: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "step_done",
        "description": "Mark the current step finished and give its result.",
        "parameters": {
            "type": "object",
            "properties": {"result": {"type": "string", "description": "What the step found."}},
            "required": ["result"],
        },
    },
}

FINAL_ANSWER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "final_answer",
        "description": "Give the final answer to the goal.",
        "parameters": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The answer."}},
            "required": ["answer"],
        },
    },
}

_PSEUDO_ARGUMENT = {"step_done": "result", "final_answer": "answer"}


def limit_reached(state: AgentState, res: AgentResources) -> str | None:
    """Return which run limit is exhausted (steps or seconds), or ``None``."""
    limits = res.spec.limits
    counters: Mapping[str, Any] = state.get("counters") or {}
    if counters.get("steps", 0) >= limits.max_steps:
        return f"step limit reached ({limits.max_steps} steps, limits.max_steps)"
    if counters.get("elapsed_s", 0.0) >= limits.max_seconds:
        return f"time limit reached ({limits.max_seconds:g} s of work, limits.max_seconds)"
    return None


def limit_stop(state: AgentState, res: AgentResources) -> dict[str, Any] | None:
    """Return the update that ends the run at an exhausted limit (``limit_reached``), or
    ``None`` while the run may go on."""
    limit = limit_reached(state, res)
    if not limit:
        return None
    last = state.get("feedback")
    reason = f"{limit}; last problem: {last}" if last else limit
    return {"status": "stopped_limit", "status_reason": reason, "route": "end"}


def actions_from_message(message: BaseMessage, *, most: int = 1) -> list[ProposedAction]:
    """Read the actions of ``message``: its tool calls (at most ``most``), or else its first
    ``step_done``/``final_answer``; ``[]`` if it has none.

    Beside real tool calls, a ``step_done`` or ``final_answer`` in the same turn is dropped:
    the step is not done before the calls beside it have run.
    """
    calls = getattr(message, "tool_calls", None) or []
    thought = message.content if isinstance(message.content, str) else ""
    actions = [_action(call, thought if index == 0 else "") for index, call in enumerate(calls)]
    tools = [action for action in actions if action["kind"] == "tool"]
    if tools:
        return tools[:most]
    return actions[:1]


def _action(call: Mapping[str, Any], thought: str) -> ProposedAction:
    name, args = call["name"], dict(call.get("args") or {})
    call_id = call.get("id") or f"call_{uuid.uuid4().hex[:12]}"
    if name in _PSEUDO_ARGUMENT:
        text = str(args.get(_PSEUDO_ARGUMENT[name], "")).strip()
        kind: ActionKind = "final_answer" if name == "final_answer" else "step_done"
        return ProposedAction(
            kind=kind, thought=thought, tool=None, args={}, call_id=call_id, text=text
        )
    return ProposedAction(
        kind="tool", thought=thought, tool=name, args=args, call_id=call_id, text=""
    )


def _context(state: AgentState, *, suggest_tool: bool = True, feedback: bool = True) -> str:
    plan = state.get("plan") or []
    step = current_step(plan, state.get("current_step"))
    parts = [f"Goal: {state['goal']}"]
    if state.get("recalled"):
        parts += ["What you remember:", state["recalled"]]
    parts += ["Plan:", render_plan(plan, state.get("current_step"))]
    if state.get("summary"):
        parts += ["Earlier:", state["summary"]]
    if step is not None:
        # When the step's tool is the only choice, naming it again only gives a small model
        # words to copy into the call ("12*(3+4) (tool)").
        hint = f" (suggested tool: {step['tool']})" if step["tool"] and suggest_tool else ""
        parts.append(f"Current step {step['id']}: {step['description']}{hint}")
    else:
        parts.append("All steps are done. Give the final answer.")
    if feedback and state.get("feedback"):
        parts.append(_note(state))
    return "\n".join(parts)


def _note(state: AgentState) -> str:
    """Return the note on the last failed attempt, as the model sees it."""
    return f"Note: {state['feedback']}"


def _choices(
    state: AgentState, tools: Sequence[BaseTool], *, force_planned_tool: bool
) -> tuple[str, list[Any], str]:
    """Return the instructions, the actions to choose from, and the tool choice for this turn.

    After the last step only ``final_answer`` is offered. With ``force_planned_tool`` (a
    ``tiny`` profile rule), on the first attempt at a step whose plan names an available tool,
    that tool is the only choice: the model just fills in its arguments, which a small model does
    far more reliably than choosing among many tools. Otherwise every tool, ``step_done`` and
    ``final_answer`` are offered.
    """
    step = current_step(state.get("plan") or [], state.get("current_step"))
    if step is None:
        return FINISH_INSTRUCTIONS, [FINAL_ANSWER], "final_answer"
    planned = next((tool for tool in tools if tool.name == step["tool"]), None)
    if force_planned_tool and planned is not None and step["attempts"] == 0:
        return CALL_INSTRUCTIONS, [planned], planned.name
    return THINK_INSTRUCTIONS, [*tools, STEP_DONE, FINAL_ANSWER], "any"


def step_messages(messages: Sequence[BaseMessage], step_id: int | None) -> list[BaseMessage]:
    """Return the messages of step ``step_id``: its tool calls (tagged by think with the step's
    id) and their results, plus every message that is neither. With no current step (the final
    answer), every message is kept."""
    if step_id is None:
        return list(messages)
    kept: list[BaseMessage] = []
    keep_results = False
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            keep_results = message.response_metadata.get("step") == step_id
            if keep_results:
                kept.append(message)
        elif isinstance(message, ToolMessage):
            if keep_results:
                kept.append(message)
        else:
            kept.append(message)
    return kept


def _refused_a_repeat(state: AgentState, profile: ModelProfile) -> bool:
    """Tell whether the last turn's call was refused as a repeat of an earlier call (``repeat``
    or ``loop``), under the ``repeat_recovery`` profile rule: the next turn then sees only the
    current step's messages, out of sight of the call it copied."""
    if not profile.repeat_recovery:
        return False
    return any(v is not None and v.get("rule") in ("repeat", "loop") for v in turn_verdicts(state))


_SETTLED = ("read", "write")
"""The risk classes whose repeated call can settle a step: a read returns the same, and a change
is made already (an ``exec`` call may do something new each time)."""


def settled_by_repeat(
    state: AgentState, action: ProposedAction, traits: Mapping[str, ToolTraits]
) -> str | None:
    """Return the earlier output of ``action`` when proposing it again settles the current step
    (the ``settle_repeats`` profile rule), else ``None``.

    It does when the call is read-only and succeeded with only reads run since, or changes
    things (``write``) and succeeded at all, and either that success was on the current step or
    the last turn's identical call was refused as a repeat of it (``repeat``) or as a loop
    (``loop``: it already ran as often as the limit allows).
    """
    tool = action["tool"]
    info = traits.get(tool or "")
    if action["kind"] != "tool" or tool is None or info is None or info.risk not in _SETTLED:
        return None
    observations: Sequence[Mapping[str, Any]] = state.get("observations") or []
    if info.risk == "read":
        observations = reads_since_change(observations, traits)
    signature = call_signature(tool, action["args"], traits)
    same = [
        observation
        for observation in observations
        if observation["ok"]
        and call_signature(observation["tool"], observation["args"], traits) == signature
    ]
    if not same:
        return None
    output = str(same[-1]["content"])
    on_this_step = any(o["step_id"] == state.get("current_step") for o in same)
    previous, verdict = state.get("proposed_action"), state.get("verdict")
    refused = (
        verdict is not None
        and verdict.get("rule") in ("repeat", "loop")
        and previous is not None
        and previous["kind"] == "tool"
        and call_signature(previous["tool"] or "", previous["args"], traits) == signature
    )
    return output if on_this_step or refused else None


def _retry_note(state: AgentState) -> str:
    """Return the note on the last failed attempt, as the prompt's last message; after a failed
    tool call it also asks for a change rather than the same call."""
    note = _note(state)
    if any(action["kind"] == "tool" for action in turn_actions(state)):
        note += f"\n{RETRY_NOTE}"
    return note


def _takes_no_required_arguments(
    choices: Sequence[Any], tool_choice: str, schemas: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Tell whether the only choice is a real tool whose arguments are all optional."""
    if len(choices) != 1 or not isinstance(choices[0], BaseTool):
        return False
    return choices[0].name == tool_choice and not schemas[tool_choice].get("required")


def _left_out(message: BaseMessage) -> dict[str, Any]:
    """Return the optional arguments ``drop_invented_optional`` left out of ``message``'s calls,
    to keep beside the calls in the run's messages."""
    left_out = message.response_metadata.get("left_out_arguments")
    return {"left_out_arguments": left_out} if left_out else {}


def make_think_node(res: AgentResources) -> Any:
    """Build the think node over ``res``."""

    async def think(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Check the limits, then ask the model for one action (or, with
        ``limits.max_parallel_calls`` above 1, several independent tool calls)."""
        if len(state.get("messages") or []) > res.spec.memory.window_messages:
            return {"route": "compact"}
        stop = limit_stop(state, res)
        if stop is not None:
            return stop
        toolset = await res.toolset()
        profile = await res.aprofile()
        instructions, choices, tool_choice = _choices(
            state, toolset.tools, force_planned_tool=profile.force_planned_tool
        )
        started = time.perf_counter()
        update: dict[str, Any] = {
            "counters": bump(state, steps=1),
            "verdict": None,
            "parallel_actions": [],
            "parallel_verdicts": [],
            "route": "",
        }
        parallel = res.spec.limits.max_parallel_calls > 1
        schemas = toolset.schemas()
        try:
            if _takes_no_required_arguments(choices, tool_choice, schemas):
                # Nothing for the model to decide: call the planned tool with its defaults.
                message = AIMessage("", tool_calls=[{"name": tool_choice, "args": {}, "id": None}])
            else:
                finishing = tool_choice == "final_answer"
                several = {"parallel_tool_calls": True} if parallel and not finishing else {}
                bound = (await res.achat_model()).bind_tools(
                    choices, tool_choice=tool_choice, **several
                )
                history: Sequence[BaseMessage] = state.get("messages") or []
                if profile.step_history or _refused_a_repeat(state, profile):
                    history = step_messages(history, state.get("current_step"))
                if several and instructions == THINK_INSTRUCTIONS:
                    instructions += PARALLEL_CALLS
                note_last = profile.feedback_last and bool(state.get("feedback"))
                context = _context(state, suggest_tool=len(choices) > 1, feedback=not note_last)
                prompt = [SystemMessage(instructions), HumanMessage(context), *history]
                if note_last:
                    prompt.append(HumanMessage(_retry_note(state)))
                message = await bound.ainvoke(prompt)
                if profile.drop_invented_optional:
                    message = without_invented_optional(message, schemas, prompt)
        except Exception as exc:  # A failing model is a failed attempt, handled by reflect.
            return {
                **update,
                "proposed_action": None,
                "feedback": f"the model failed ({type(exc).__name__}: {exc})",
            }
        most = res.spec.limits.max_parallel_calls
        actions = actions_from_message(message, most=most)
        if not actions:
            text = str(message.content)[:200]
            return {
                **update,
                "proposed_action": None,
                "feedback": f"the model gave no action (it said: {text!r}); call a tool",
            }
        action = actions[0]
        if profile.settle_repeats and len(actions) == 1:
            settled = settled_by_repeat(state, action, await res.tool_traits())
            if settled is not None:
                done = ProposedAction(
                    kind="step_done",
                    thought=f"{action['tool']} with these arguments already returned this",
                    tool=None,
                    args={},
                    call_id=action["call_id"],
                    text=settled,
                )
                return {**update, "proposed_action": done, "parallel_actions": []}
        if action["kind"] == "tool":
            update["messages"] = [
                AIMessage(
                    content=action["thought"],
                    tool_calls=[
                        {"name": a["tool"], "args": a["args"], "id": a["call_id"]} for a in actions
                    ],
                    response_metadata={
                        "think_seconds": round(time.perf_counter() - started, 3),
                        "step": state.get("current_step"),
                        **_left_out(message),
                    },
                )
            ]
        return {**update, "proposed_action": action, "parallel_actions": actions[1:]}

    return think
