"""The two ways the model answers a BFCL item: grammar-constrained tool calls and plain prompting.

Both use the same ``LocalChatModel`` and greedy settings. ``constrained`` binds the item's
functions with ``bind_tools`` (the agent's own grammar-bound decoding); ``plain`` lists them in
a BFCL-style prompt and parses whatever the model writes, leniently: Python call syntax
(``[f(a=1)]``) through ``ast``, else the first JSON object that looks like a call.

For the parallel categories both modes ask for several calls: ``constrained`` binds with
``parallel_tool_calls=True`` (up to ``LocalChatModel.max_parallel_calls`` calls a reply) and
``plain`` asks for ``[f(a=1), g(b=2)]``, which ``parse_plain_output`` already reads.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Self

from goalgraph.eval.bfcl_data import BfclItem, function_tool
from goalgraph.llm.grammar import NO_TOOL
from goalgraph.policies import without_invented_optional

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage

    from goalgraph.llm.chat import LocalChatModel

__all__ = [
    "CONSTRAINED_PARALLEL_SYSTEM",
    "CONSTRAINED_SYSTEM",
    "MODES",
    "PLAIN_PARALLEL_SYSTEM",
    "PLAIN_SYSTEM",
    "STANDARD_SETTINGS",
    "Attempt",
    "ConstrainedSettings",
    "constrained_examples",
    "parse_plain_output",
    "run_constrained",
    "run_plain",
]

MODES = ("constrained", "gated", "grounded", "plain")
"""The answering modes, ours first: ``gated`` adds the tool gate to ``constrained``, ``grounded``
adds argument grounding to ``gated``."""

CONSTRAINED_SYSTEM = (
    "You turn the user's request into one function call. Copy argument values from the request."
)
"""The system turn of constrained mode; the tool list and reply format follow it."""

CONSTRAINED_PARALLEL_SYSTEM = (
    "You turn the user's request into function calls: one call for each thing it asks, all "
    "of them in one reply. Copy argument values from the request."
)
"""The system turn of constrained mode in the parallel categories."""

PLAIN_SYSTEM = """You are an expert in composing functions. You are given a question and a set \
of possible functions. Based on the question, make the function call that achieves the purpose.
If none of the functions can be used, reply with an empty list: [].
Reply only with the call, in the format [func_name(param_name1=value1, param_name2=value2)], \
and no other text.

Here is a list of functions in JSON format that you can invoke.
{functions}"""
"""The system turn of plain mode, in the style of BFCL's prompt for prompting models."""

PLAIN_PARALLEL_SYSTEM = """You are an expert in composing functions. You are given a question \
and a set of possible functions. Based on the question, make one or more function calls to \
achieve the purpose: one call for each thing the question asks.
If none of the functions can be used, reply with an empty list: [].
Reply only with the calls, in the format [func_name1(param_name1=value1, param_name2=value2), \
func_name2(param_name1=value1)], and no other text.

Here is a list of functions in JSON format that you can invoke.
{functions}"""
"""The system turn of plain mode in the parallel categories (BFCL's several-calls wording)."""

# A name followed by "(", unless it is being defined ("def f(x):" is code, not a call).
_CALL_START = re.compile(r"(?<![\w.])(?<!def )(?<!class )[A-Za-z_][\w.]*\s*\(")


@dataclass(frozen=True)
class ConstrainedSettings:
    """How constrained mode presents the item's functions to the grammar and the prompt."""

    enums_from_hints: bool = True
    """Turn "can be X or Y" hints into enums."""
    prune_optional: bool = True
    """Leave out optional parameters the request does not mention."""
    parameter_notes: bool = False
    """Show each parameter's description in the prompt (off: the 135M model copied them into
    argument values, and simple_python scored 40% with them against 50% without)."""
    examples: bool = False
    """Show two worked examples (a call and a no-call) in the system turn (off: they raised
    irrelevance but lowered simple_python, as the model then declined more calls)."""
    drop_invented_optional: bool = False
    """Leave out optional arguments the request does not mention, as the agent does under the
    profile rule of that name (``run_bfcl`` sets it from the model's profile)."""

    @classmethod
    def for_profile(cls, profile: str, overrides: Mapping[str, bool] | None = None) -> Self:
        """Return the settings of a model profile (``goalgraph.profiles``), with ``overrides``.

        The defaults above were measured on the bundled 135M model (``tiny``). Any other
        profile sees the functions as the agent shows a tool: every parameter, with its
        description (``STANDARD_SETTINGS``).

        Raises:
            ValueError: An override that names no setting.
        """
        base = cls() if profile == "tiny" else cls(**STANDARD_SETTINGS)
        unknown = sorted(set(overrides or {}) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ValueError(f"unknown constrained setting(s) {', '.join(unknown)}; known: {known}")
        return replace(base, **(overrides or {}))


STANDARD_SETTINGS: dict[str, bool] = {"prune_optional": False, "parameter_notes": True}
"""How the ``standard`` profile's settings differ from the defaults measured on ``tiny``."""


@dataclass(frozen=True)
class Attempt:
    """What the model answered to one item, before scoring."""

    calls: list[dict[str, dict[str, Any]]] | None
    """The calls in BFCL's shape; ``[]`` for an explicit no-call; ``None`` when unparsable."""
    raw: str
    """The generated text (for constrained mode, the decoded turn re-serialised)."""
    hit_token_limit: bool
    """Generation stopped at ``max_new_tokens``."""
    seconds: float
    """Wall time of the item, grammar compilation included."""
    output_tokens: int
    """Generated tokens."""
    cut_off_call: str | None = None
    """The function a constrained turn had chosen before ``max_new_tokens`` cut it off."""
    dropped_call: dict[str, Any] | None = None
    """A call argument grounding turned into no call (``response_metadata["ungrounded_call"]``)."""
    left_out_arguments: list[dict[str, Any]] | None = None
    """Optional arguments ``drop_invented_optional`` left out, per call
    (``response_metadata["left_out_arguments"]``)."""

    @property
    def parsable(self) -> bool:
        """Whether the output could be read as calls (or an explicit no-call)."""
        return self.calls is not None


def _messages(item: BfclItem, system: str) -> list[BaseMessage]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    turns: list[BaseMessage] = [SystemMessage(system)]
    for message in item.messages:
        role, content = message.get("role"), str(message.get("content", ""))
        if role == "system":
            turns[0] = SystemMessage(f"{system}\n\n{content}")
        elif role == "assistant":
            turns.append(AIMessage(content))
        else:
            turns.append(HumanMessage(content))
    return turns


def _usage(message: AIMessage) -> tuple[bool, int]:
    finish = message.response_metadata.get("finish_reason")
    tokens = int(message.usage_metadata["output_tokens"]) if message.usage_metadata else 0
    return finish == "length", tokens


def run_constrained(
    chat: LocalChatModel,
    item: BfclItem,
    *,
    max_new_tokens: int,
    settings: ConstrainedSettings | None = None,
    policies: BaseChatModel | None = None,
    parallel: bool = False,
) -> Attempt:
    """Answer ``item`` through ``chat.bind_tools``: the output is decoded under the tool grammar.

    ``policies`` is ``chat`` behind the tool gate or grounding (``goalgraph.policies``), when a
    mode uses them. ``parallel`` binds with ``parallel_tool_calls=True``, so one reply may
    hold several calls.
    """
    settings = settings or ConstrainedSettings()
    tools = [
        function_tool(
            fn,
            question=item.question,
            enums_from_hints=settings.enums_from_hints,
            prune_optional=settings.prune_optional,
            parameter_notes=settings.parameter_notes,
        )
        for fn in item.functions
    ]
    system = CONSTRAINED_PARALLEL_SYSTEM if parallel else CONSTRAINED_SYSTEM
    if settings.examples:
        system += "\n" + constrained_examples(chat.no_call)
    start = time.perf_counter()
    extra = {"parallel_tool_calls": True} if parallel else {}
    bound = (policies or chat).bind_tools(
        tools, tool_choice="auto", max_new_tokens=max_new_tokens, **extra
    )
    messages = _messages(item, system)
    message = bound.invoke(messages)
    if settings.drop_invented_optional:
        parameters = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
        message = without_invented_optional(message, parameters, messages)
    seconds = time.perf_counter() - start
    hit_limit, tokens = _usage(message)
    calls: list[dict[str, dict[str, Any]]] | None
    cut_off: str | None = None
    if message.tool_calls:
        calls = [{call["name"]: dict(call["args"])} for call in message.tool_calls]
        raw = json.dumps([{c["name"]: c["args"]} for c in message.tool_calls], ensure_ascii=False)
    elif message.invalid_tool_calls:
        calls, raw = None, str(message.invalid_tool_calls[0].get("args") or "")
        cut_off = message.invalid_tool_calls[0].get("name")
    else:
        calls, raw = [], json.dumps({"response": message.text}, ensure_ascii=False)
    return Attempt(
        calls=calls,
        raw=raw,
        hit_token_limit=hit_limit,
        seconds=seconds,
        output_tokens=tokens,
        cut_off_call=cut_off,
        dropped_call=message.response_metadata.get("ungrounded_call"),
        left_out_arguments=message.response_metadata.get("left_out_arguments"),
    )


def constrained_examples(no_call: str) -> str:
    """Return two worked examples, a call and a no-call, in the reply shape of ``no_call``."""
    call = '"name": "get_weather", "arguments": {"city": "Rome"}'
    answer = '"response": "No function fits."'
    if no_call == "decision":
        call, answer = f'"use_tool": true, {call}', f'"use_tool": false, {answer}'
    elif no_call == "option":
        answer = f'"name": "{NO_TOOL}", {answer}'
    return (
        "Examples with a tool get_weather(city: string):\n"
        f'"What is the weather in Rome?" -> {{{call}}}\n'
        f'"Tell me a joke." -> {{{answer}}}'
    )


def run_plain(
    chat: LocalChatModel, item: BfclItem, *, max_new_tokens: int, parallel: bool = False
) -> Attempt:
    """Answer ``item`` from a BFCL-style prompt, without a grammar, and parse the text
    (``parallel``: the prompt asks for one or more calls)."""
    template = PLAIN_PARALLEL_SYSTEM if parallel else PLAIN_SYSTEM
    system = template.format(functions=json.dumps(item.functions, ensure_ascii=False))
    start = time.perf_counter()
    message = chat.invoke(_messages(item, system), max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - start
    hit_limit, tokens = _usage(message)
    text = str(message.text)
    return Attempt(
        calls=parse_plain_output(text, item.functions),
        raw=text,
        hit_token_limit=hit_limit,
        seconds=seconds,
        output_tokens=tokens,
    )


def parse_plain_output(
    text: str, functions: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, dict[str, Any]]] | None:
    """Read calls from free text: ``[f(a=1), g(b="x")]``, a bare ``f(a=1)``, or JSON.

    JSON may be ``{"name": ..., "arguments": {...}}`` (also ``parameters``/``args``),
    ``{"f": {...}}``, or a list of those. Positional arguments are matched to the documented
    parameters in order. ``[]`` (or ``{}``) is an explicit no-call.

    Returns:
        The calls in BFCL's shape, ``[]`` for an explicit no-call, ``None`` when nothing parses.
    """
    body = _strip_fences(text).strip()
    if body in ("[]", "{}", "[{}]"):
        return []
    params = {str(fn.get("name")): _param_order(fn) for fn in functions}
    for candidate in _python_candidates(body):
        calls = _python_calls(candidate, params)
        if calls is not None:
            return calls
    return _json_calls(body)


def _strip_fences(text: str) -> str:
    fenced = re.search(r"```(?:[a-zA-Z]+)?\n?(.*?)```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def _param_order(function: Mapping[str, Any]) -> list[str]:
    properties = (function.get("parameters") or {}).get("properties") or {}
    return list(properties)


def _python_candidates(body: str) -> list[str]:
    candidates = [body]
    if "[" in body and "]" in body:
        candidates.append(body[body.index("[") : body.rindex("]") + 1])
    for match in _CALL_START.finditer(body):
        end = _closing_paren(body, match.end() - 1)
        if end is not None:
            candidates.append(body[match.start() : end + 1])
    return candidates


def _closing_paren(text: str, open_at: int) -> int | None:
    depth, quote = 0, ""
    for index in range(open_at, len(text)):
        char = text[index]
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _python_calls(
    source: str, params: Mapping[str, list[str]]
) -> list[dict[str, dict[str, Any]]] | None:
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        return None
    nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
    if not nodes or not all(isinstance(node, ast.Call) for node in nodes):
        return None
    calls = []
    for node in nodes:
        assert isinstance(node, ast.Call)
        call = _python_call(node, params)
        if call is None:
            return None
        calls.append(call)
    return calls


def _python_call(
    node: ast.Call, params: Mapping[str, list[str]]
) -> dict[str, dict[str, Any]] | None:
    name = _dotted_name(node.func)
    if name is None:
        return None
    order = params.get(name, [])
    if len(node.args) > len(order):
        return None
    arguments = {key: _literal(value) for key, value in zip(order, node.args, strict=False)}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        arguments[keyword.arg] = _literal(keyword.value)
    return {name: arguments}


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        owner = _dotted_name(node.value)
        return f"{owner}.{node.attr}" if owner else None
    return None


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        # A variable or an expression: BFCL compares such values as their source text.
        return ast.unparse(node)


def _json_calls(body: str) -> list[dict[str, dict[str, Any]]] | None:
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", body):
        try:
            data, _ = decoder.raw_decode(body, match.start())
        except json.JSONDecodeError:
            continue
        items = data if isinstance(data, list) else [data]
        calls = [_json_call(item) for item in items]
        if items and all(call is not None for call in calls):
            return [call for call in calls if call is not None]
    return None


def _json_call(data: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(data, dict):
        return None
    name = data.get("name") or data.get("function")
    if isinstance(name, str):
        for key in ("arguments", "parameters", "args"):
            if isinstance(data.get(key), dict):
                return {name: dict(data[key])}
        return {name: {}} if len(data) == 1 else None
    if len(data) == 1:
        ((key, value),) = data.items()
        if isinstance(value, dict):
            return {str(key): dict(value)}
    return None
