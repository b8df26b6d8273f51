"""A model's own tool-call format, still under the grammar.

Models trained for tool use (Qwen2.5, Hermes and most instruct models since) bring a chat template
that renders a ``tools=`` list into the system turn, assistant tool calls as
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` and tool results as ``tool``
turns. A model writes calls best in the format it was trained on, so ``LocalChatModel`` uses it
when the template has it (``tool_format="native"``); templates without it (SmolLM2's) get
goalgraph's generic JSON format instead (``goalgraph.llm.grammar.tool_call_schema``).

The grammar still holds: a required call is ``<tool_call>\\n`` + a JSON call valid for one of
the allowed tools' schemas + ``\\n</tool_call>``. Where the model may answer instead, small models
often drift from their trained format and write the call as a fenced or bare JSON block (Qwen2.5-
Coder-0.5B does, unconstrained and even under a tags-or-text grammar). So that turn's grammar takes
the call in any of the three wrappings (``ANSWER_OR_CALL``), each still schema-valid, or an answer:
free text that starts with a word.

Parallel calls (``bind_tools(..., parallel_tool_calls=True)``): a turn may hold 1 to k calls,
``<tool_call>\\n{...}\\n</tool_call>`` blocks separated by a newline, which is how Qwen2.5's
template renders an assistant turn with several ``tool_calls``. Where the model may answer, the
drifted wrappings take several calls too, as JSON lines inside one fence or bare JSON lines
(Qwen2.5-Coder-0.5B, left to choose, fenced its first call and so stopped at one on BFCL's
parallel items). The answer stays single and alone: an answer mixed with calls is not a turn the
template can render.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from goalgraph.llm.grammar import (
    ToolDecision,
    parse_tool_calls,
    parse_tool_output,
    tool_call_schema,
)

__all__ = [
    "ANSWER_OR_CALL",
    "CALL_CLOSE",
    "CALL_ONLY",
    "CALL_OPEN",
    "native_call_schema",
    "native_turns",
    "parse_native_calls",
    "parse_native_output",
    "plain_turn",
    "template_has_tool_calls",
]

CALL_OPEN = "<tool_call>\n"
"""What opens a call in the native format."""
CALL_CLOSE = "\n</tool_call>"
"""What closes it."""
CALL_ONLY: tuple[tuple[str, str], ...] = ((CALL_OPEN, CALL_CLOSE),)
"""The wrappings of a required call."""
ANSWER_OR_CALL: tuple[tuple[str, str], ...] = (
    (CALL_OPEN, CALL_CLOSE),
    ("```json\n", "\n```"),
    ("", ""),
)
"""The wrappings a call may take where the model may also answer: tags, a JSON fence, none."""


def template_has_tool_calls(tokenizer: Any) -> bool:
    """Tell whether the tokenizer's chat template renders ``tools`` and ``<tool_call>`` calls."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # Several named templates: the default one is used.
        template = template.get("default") or next(iter(template.values()), None)
    return isinstance(template, str) and "tools" in template and "<tool_call>" in template


def native_call_schema(
    tools: Sequence[Mapping[str, Any]], allowed: Sequence[str]
) -> dict[str, Any]:
    """Return the JSON schema of the call inside the tags: ``{"name", "arguments"}`` of one of
    the ``allowed`` tools (no thought, no answer branch: answering is free text)."""
    offered = [tool for tool in tools if tool["function"]["name"] in allowed]
    return tool_call_schema(offered, tool_choice="required", thought=False)


def plain_turn(message: BaseMessage) -> dict[str, str] | None:
    """Return the turn of a system, user or generic chat message, or ``None`` for the assistant
    and tool messages whose rendering depends on the tool-call format."""
    text = str(message.text)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text}
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": text}
    if isinstance(message, ChatMessage):
        role = message.role if message.role in ("system", "user", "assistant") else "user"
        return {"role": role, "content": text}
    return None


def native_turns(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert LangChain messages to the turns a tool-aware chat template renders natively:
    assistant turns carry ``tool_calls`` and tool results are ``tool`` turns."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        plain = plain_turn(message)
        if plain is not None:
            turns.append(plain)
        elif isinstance(message, AIMessage):
            turn: dict[str, Any] = {"role": "assistant", "content": str(message.text)}
            if message.tool_calls:
                turn["tool_calls"] = [
                    {"type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
                    for c in message.tool_calls
                ]
            turns.append(turn)
        elif isinstance(message, ToolMessage | FunctionMessage):
            turns.append({"role": "tool", "content": str(message.text)})
        else:
            raise ValueError(f"cannot render message of type {type(message).__name__}")
    return turns


def parse_native_output(text: str) -> ToolDecision:
    """Read a turn decoded under the native grammar: a call in one of its wrappings, or an answer.

    Raises:
        ValueError: A call whose JSON cannot even be partly read.
    """
    stripped = text.strip()
    for opening, closing in ANSWER_OR_CALL:
        if opening and stripped.startswith(opening.strip()):
            body = stripped[len(opening.strip()) :]
            if closing.strip() and closing.strip() in body:
                body = body[: body.index(closing.strip())]
            return parse_tool_output(body.strip())
    if stripped.startswith("{"):
        return parse_tool_output(stripped)
    return ToolDecision(thought="", response=stripped)


def parse_native_calls(text: str) -> list[ToolDecision]:
    """Read a turn that may hold several calls: tagged blocks one after another, JSON lines in
    one fence or bare JSON lines; or an answer.

    Every complete call becomes a ``complete`` decision; a tagged call cut off at
    ``max_new_tokens`` becomes a last one with ``complete=False``, so the calls before it are kept.

    Raises:
        ValueError: A call whose JSON cannot even be partly read.
    """
    stripped = text.strip()
    opening, closing = CALL_OPEN.strip(), CALL_CLOSE.strip()
    fence_open, fence_close = (part.strip() for part in ANSWER_OR_CALL[1])
    if stripped.startswith(fence_open):
        body = stripped[len(fence_open) :]
        body = body[: body.index(fence_close)] if fence_close in body else body
        return parse_tool_calls(body.strip())
    if stripped.startswith("{"):
        return parse_tool_calls(stripped)
    if not stripped.startswith(opening):
        return [parse_native_output(text)]
    decoder = json.JSONDecoder(strict=False)
    decisions: list[ToolDecision] = []
    rest = stripped
    while rest.startswith(opening):
        body = rest[len(opening) :].lstrip()
        try:
            _, end = decoder.raw_decode(body)
        except json.JSONDecodeError:
            cut = body[: body.index(closing)] if closing in body else body
            decisions.append(parse_tool_output(cut.strip()))
            break
        decisions.append(parse_tool_output(body[:end]))
        rest = body[end:].lstrip()
        if rest.startswith(closing):
            rest = rest[len(closing) :].lstrip()
    return decisions
