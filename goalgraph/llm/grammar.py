"""JSON schemas for tool calls and structured output, and a cache of their compiled grammars.

Decoding runs under an xgrammar grammar compiled from a JSON schema, so the model can only emit
JSON that the schema accepts: an unknown tool name or a malformed argument cannot be produced.

What xgrammar 0.2.8 enforces (checked with ``GrammarMatcher.accept_string`` against schemas
compiled with ``any_whitespace=False``; see ``tests/unit/test_llm_grammar.py``):

* Honoured: ``type`` (object, array, string, integer, number, boolean, null, and type lists),
  ``properties`` with ``required`` (optional keys may be omitted), ``additionalProperties``
  (and strict mode, the default, forbids undeclared keys even when it is absent), ``enum``,
  ``const``, ``anyOf``, ``oneOf`` (treated as ``anyOf``), ``allOf``, ``$ref`` into ``$defs``,
  ``minItems`` / ``maxItems``, ``prefixItems`` with ``items: false``, ``minLength`` /
  ``maxLength``, ``pattern``, ``format`` (e.g. ``date``), ``minimum`` / ``maximum`` /
  ``exclusiveMinimum`` for integers and numbers, ``multipleOf``, ``minProperties``. An integer
  field rejects ``1.5``. Keys are emitted in the schema's property order.
* Ignored: ``not`` and ``uniqueItems`` (``[1, 1]`` is accepted); ``title``, ``description``
  and ``default`` are annotations only.
* Cost: a bounded string such as ``maxLength: 160`` is expanded into a repetition, which makes
  compiling take ~0.9 s instead of a few ms (80 characters: ~0.35 s). Compiled grammars are
  therefore cached per tokenizer and schema; xgrammar needs a new ``LogitsProcessor`` per call.
* Budget: a 135M model often loops inside a string until ``max_new_tokens`` cuts the JSON off.
  ``StringBudget`` closes the thought after a token budget, and any string once the tokens left
  are about what closing the JSON needs; it only picks among tokens the grammar already allows.
* Layout: with ``any_whitespace=False`` the output uses ``json.dumps``'s default separators
  (``", "`` and ``": "``) and no other whitespace, so the model cannot loop on blank space.
* Parallel calls: ``GrammarCache.compile_calls`` (generic JSON) and ``compile_wrapped`` with
  ``max_calls`` (native tags) repeat the call grammar 1..k times, separated by a newline, with
  ``Grammar.concat`` / ``Grammar.union``. xgrammar copies a grammar into every concatenation,
  so the call grammar appears k times; only the first generic object carries the thought (the
  one with the costly ``maxLength``), so the extra copies compile in milliseconds. Every copy after
  the first is optional, so the grammar may end (EOS) after any complete call.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from goalgraph.llm.drafting import GrammarProcessor, common_prefix

__all__ = [
    "NO_TOOL",
    "THOUGHT_MAX_LENGTH",
    "GrammarCache",
    "NoCallStyle",
    "ParallelSchemas",
    "StringBudget",
    "ToolDecision",
    "canonical_json",
    "normalize_tool_choice",
    "parallel_call_schemas",
    "parse_tool_calls",
    "parse_tool_output",
    "schema_outline",
    "structured_output_schema",
    "to_openai_tools",
    "tool_call_schema",
]

THOUGHT_MAX_LENGTH = 160
"""Longest ``thought`` the tool-call grammar allows, in characters."""

ToolMode = Literal["auto", "required", "none"]

NoCallStyle = Literal["response", "decision", "option"]
"""How a tool-calling turn that may answer instead shows that choice (see ``tool_call_schema``)."""

NO_TOOL = "no_tool"
"""The pseudo-tool name of the ``option`` no-call style."""


def to_openai_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Convert LangChain tools, pydantic classes, functions or dicts to OpenAI tool dicts.

    Raises:
        ValueError: Two tools share a name.
    """
    from langchain_core.utils.function_calling import convert_to_openai_tool

    converted = [convert_to_openai_tool(tool) for tool in tools]
    names = [tool["function"]["name"] for tool in converted]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tool names must be unique; repeated: {', '.join(duplicates)}")
    return converted


def normalize_tool_choice(tool_choice: Any, names: Sequence[str]) -> tuple[ToolMode, list[str]]:
    """Reduce a LangChain ``tool_choice`` to a mode and the tool names the model may call.

    Args:
        tool_choice: ``None``/``"auto"`` (call a tool or answer), ``"any"``/``"required"``/
            ``True`` (must call a tool), ``"none"``/``False`` (must answer), a tool name, or
            ``{"type": "function", "function": {"name": ...}}``.
        names: The bound tool names, in order.

    Returns:
        ``(mode, allowed)`` where mode is ``auto``, ``required`` or ``none``.

    Raises:
        ValueError: ``tool_choice`` names a tool that is not bound, or is not understood.
    """
    if tool_choice is None or tool_choice == "auto":
        return ("auto", list(names)) if names else ("none", [])
    if tool_choice is False or tool_choice == "none":
        return "none", []
    if tool_choice is True or tool_choice in ("any", "required"):
        if not names:
            raise ValueError(f"tool_choice={tool_choice!r} needs at least one bound tool")
        return "required", list(names)
    name: Any = tool_choice
    if isinstance(tool_choice, Mapping):
        name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
    if isinstance(name, str) and name in names:
        return "required", [name]
    raise ValueError(f"tool_choice {tool_choice!r} does not name a bound tool ({list(names)})")


def tool_call_schema(
    tools: Sequence[Mapping[str, Any]],
    *,
    tool_choice: Any = None,
    thought: bool = True,
    thought_max_length: int | None = THOUGHT_MAX_LENGTH,
    no_call: NoCallStyle = "response",
) -> dict[str, Any]:
    """Build the JSON schema of one model turn that calls a tool or answers.

    Each allowed tool becomes a branch ``{"thought": str, "name": <const>, "arguments":
    <its parameters>}``; unless a tool is required, a branch ``{"thought": str, "response":
    str}`` lets the model answer in plain text.

    Args:
        tools: OpenAI-format tool dicts (see ``to_openai_tools``).
        tool_choice: See ``normalize_tool_choice``.
        thought: Start every branch with a short ``thought`` string.
        thought_max_length: Cap on the thought's characters; ``None`` for no cap.
        no_call: How the answer branch is told apart (only when a tool is not required):
            ``response`` (default) by its ``"response"`` key; ``decision`` by a first field
            ``"use_tool": true|false`` in every branch, so the choice is made before any tool
            name; ``option`` by a pseudo-tool ``{"name": "no_tool", "response": str}`` offered
            beside the real ones.

    Returns:
        A JSON schema; an ``anyOf`` when there is more than one branch.
    """
    functions = [tool["function"] for tool in tools]
    mode, allowed = normalize_tool_choice(tool_choice, [fn["name"] for fn in functions])
    thought_schema: dict[str, Any] = {"type": "string"}
    if thought_max_length is not None:
        thought_schema["maxLength"] = thought_max_length
    lead = {"thought": thought_schema} if thought else {}
    defs: dict[str, Any] = {}
    branches: list[dict[str, Any]] = []
    for index, fn in enumerate(functions):
        if fn["name"] not in allowed:
            continue
        params = _hoist_defs(fn.get("parameters") or {}, f"t{index}_", defs)
        params.setdefault("type", "object")
        params.setdefault("properties", {})
        call = {"name": {"const": fn["name"]}, "arguments": params}
        if mode != "required" and no_call == "decision":
            call = {"use_tool": {"const": True}, **call}
        branches.append(_object({**lead, **call}))
    if mode != "required":
        branches.append(_object({**lead, **_answer_fields(no_call)}))
    schema: dict[str, Any] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def _answer_fields(no_call: NoCallStyle) -> dict[str, Any]:
    """Return the properties of the answer (no tool) branch for a no-call style."""
    response = {"response": {"type": "string"}}
    if no_call == "decision":
        return {"use_tool": {"const": False}, **response}
    if no_call == "option":
        return {"name": {"const": NO_TOOL}, **response}
    return response


@dataclass(frozen=True)
class ParallelSchemas:
    """The JSON schemas of a generic-format turn that may make several calls (one per line)."""

    first: dict[str, Any]
    """The first call: ``tool_call_schema``'s call branches (thought, and ``use_tool: true`` in
    the ``decision`` style, included)."""
    rest: dict[str, Any]
    """Every later call: ``{"name", "arguments"}`` only, no thought, no ``use_tool``."""
    answer: dict[str, Any] | None
    """The answer branch, which stands alone; ``None`` when a call is required."""


def parallel_call_schemas(
    tools: Sequence[Mapping[str, Any]],
    *,
    tool_choice: Any = None,
    thought: bool = True,
    thought_max_length: int | None = THOUGHT_MAX_LENGTH,
    no_call: NoCallStyle = "response",
) -> ParallelSchemas:
    """Split ``tool_call_schema`` into the schemas of a turn of one to k calls or an answer.

    The arguments are ``tool_call_schema``'s. The turn is ``first``, then up to k-1 times a
    newline and ``rest``; or ``answer`` alone. Only the first call carries the thought (and the
    ``use_tool`` decision): the later ones are the calls the thought already announced.
    """
    full = tool_call_schema(
        tools,
        tool_choice=tool_choice,
        thought=thought,
        thought_max_length=thought_max_length,
        no_call=no_call,
    )
    defs = full.get("$defs")
    branches = full.get("anyOf") or [{k: v for k, v in full.items() if k != "$defs"}]
    calls = [b for b in branches if "arguments" in b["properties"]]
    answers = [b for b in branches if "arguments" not in b["properties"]]
    first: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    if defs:
        first = {**first, "$defs": defs}
    functions = [tool["function"] for tool in tools]
    allowed = normalize_tool_choice(tool_choice, [fn["name"] for fn in functions])[1]
    offered = [tool for tool in tools if tool["function"]["name"] in allowed]
    rest = tool_call_schema(offered, tool_choice="required", thought=False)
    answer: dict[str, Any] | None = None
    if answers:
        answer = {**answers[0], "$defs": defs} if defs else answers[0]
    return ParallelSchemas(first=first, rest=rest, answer=answer)


def structured_output_schema(schema: Any) -> dict[str, Any]:
    """Return the JSON schema for a pydantic class, a TypedDict or a JSON-schema dict."""
    from pydantic import BaseModel

    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, Mapping) and ("properties" in schema or "type" in schema):
        return copy.deepcopy(dict(schema))
    from langchain_core.utils.function_calling import convert_to_json_schema

    return convert_to_json_schema(schema)


def canonical_json(schema: Any) -> str:
    """Serialise ``schema`` compactly; the cache key for its compiled grammar.

    Keys are not sorted: property order is part of the grammar (it fixes the output order).
    """
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ToolDecision:
    """One parsed tool-call turn: either a tool call or a plain response."""

    thought: str
    """The model's short reasoning (empty when thoughts are off)."""
    name: str | None = None
    """The called tool, or ``None`` for a plain response."""
    arguments: dict[str, Any] | None = None
    """The call's arguments."""
    response: str | None = None
    """The plain answer when no tool is called."""
    complete: bool = True
    """False when generation stopped (at ``max_new_tokens``) before the JSON was closed."""


def parse_tool_output(text: str) -> ToolDecision:
    """Parse text decoded under ``tool_call_schema``, salvaging what a cut-off turn holds.

    The grammar guarantees that the text is a prefix of a valid turn, so the only way it is
    not complete JSON is that generation hit ``max_new_tokens``; then the decision is marked
    ``complete=False`` and holds whatever fields were finished or begun.

    Raises:
        ValueError: Not even a partial JSON object can be read from ``text``.
    """
    from langchain_core.utils.json import parse_partial_json

    complete = True
    try:
        # xgrammar lets raw control characters (e.g. a tab) into strings; strict JSON does not.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError:
        complete = False
        try:
            data = parse_partial_json(text)
        except json.JSONDecodeError:
            data = None
    if not isinstance(data, dict):
        raise ValueError(f"tool-call output is not a JSON object: {text[:200]!r}")
    return _decision(data, complete=complete)


def _decision(data: Mapping[str, Any], *, complete: bool) -> ToolDecision:
    """Read one decoded (or partly decoded) turn object."""
    thought = str(data.get("thought", ""))
    if "response" in data:
        return ToolDecision(thought=thought, response=str(data["response"]), complete=complete)
    arguments = data.get("arguments")
    name = data.get("name") if complete or "arguments" in data else None
    return ToolDecision(
        thought=thought,
        name=name,
        arguments=arguments if isinstance(arguments, dict) else None,
        complete=complete,
    )


def parse_tool_calls(text: str) -> list[ToolDecision]:
    """Parse text decoded under ``GrammarCache.compile_calls``: JSON objects one after another
    (a newline between them), the last of which may be cut off at ``max_new_tokens``.

    Every complete object becomes a ``complete`` decision; a cut-off trailing object becomes
    one with ``complete=False`` (as ``parse_tool_output`` reads it), so the calls before it are
    kept. An answer turn is one decision with ``response`` set.

    Raises:
        ValueError: The text does not start with a JSON object that can be at least partly read.
    """
    decoder = json.JSONDecoder(strict=False)
    decisions: list[ToolDecision] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            break
        try:
            data, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            decisions.append(parse_tool_output(text[position:]))
            break
        if not isinstance(data, dict):
            raise ValueError(f"tool-call output is not a JSON object: {text[:200]!r}")
        decisions.append(_decision(data, complete=True))
    if not decisions:
        raise ValueError(f"tool-call output is not a JSON object: {text[:200]!r}")
    return decisions


def schema_outline(schema: Mapping[str, Any], *, defs: Mapping[str, Any] | None = None) -> str:
    """Render a JSON schema as a compact shape such as ``{"steps": [string], "n"?: integer}``.

    Prompts show this outline rather than the schema itself: it costs a fraction of the tokens.
    """
    defs = defs if defs is not None else schema.get("$defs", {})
    return _outline(schema, defs, depth=0)


def _outline(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> str:
    if depth > 6:
        return "..."
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _outline(defs.get(ref.split("/")[-1], {}), defs, depth + 1)
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "|".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_outline(sub, defs, depth + 1) for sub in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        fields = [
            f'"{key}"{"" if key in required else "?"}: {_outline(sub, defs, depth + 1)}'
            for key, sub in schema.get("properties", {}).items()
        ]
        return "{" + ", ".join(fields) + "}"
    if kind == "array":
        items = schema.get("items")
        inner = _outline(items, defs, depth + 1) if isinstance(items, Mapping) else "any"
        return f"[{inner}]"
    return str(kind or "any")


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _hoist_defs(params: Mapping[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move a tool's ``$defs`` to the root under prefixed names and rewrite its ``$ref``s.

    A ``$ref`` such as ``#/$defs/Step`` resolves against the document root, which is the
    ``anyOf`` wrapper once the tool's schema is nested inside it.
    """
    local = dict(params.get("$defs", {}))
    rewritten = _rewrite_refs({k: v for k, v in params.items() if k != "$defs"}, prefix)
    for name, sub in local.items():
        defs[prefix + name] = _rewrite_refs(sub, prefix)
    return rewritten


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, Mapping):
        out = {key: _rewrite_refs(value, prefix) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = "#/$defs/" + prefix + ref[len("#/$defs/") :]
        return out
    if isinstance(node, list):
        return [_rewrite_refs(value, prefix) for value in node]
    return node


class GrammarCache:
    """Compile JSON schemas into xgrammar grammars for one tokenizer, each schema once.

    Example:
        >>> cache = GrammarCache.for_tokenizer(tokenizer, vocab_size=model.config.vocab_size)
        >>> processor = cache.logits_processor({"type": "object", "properties": {}})
    """

    _instances: ClassVar[dict[tuple[int, int], GrammarCache]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, tokenizer_info: Any, *, max_threads: int = 2) -> None:
        """Wrap an ``xgrammar.TokenizerInfo`` in a compiler with a schema cache."""
        xgr = _xgrammar()
        self._compiler = xgr.GrammarCompiler(tokenizer_info, max_threads=max_threads)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._info = tokenizer_info
        self._quote_ids: Any = None
        self._tokenizer: Any = None

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, *, vocab_size: int) -> GrammarCache:
        """Return the shared cache for a Hugging Face tokenizer and the model's vocabulary size.

        ``vocab_size`` must be the model's (``model.config.vocab_size``), which may exceed the
        tokenizer's length because of padding rows in the embedding matrix.
        """
        key = (id(tokenizer), vocab_size)
        with cls._instances_lock:
            if key not in cls._instances:
                xgr = _xgrammar()
                info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
                cache = cls(info)
                # Keep the tokenizer alive so its id() cannot be reused by another object.
                cache._tokenizer = tokenizer
                cls._instances[key] = cache
            return cls._instances[key]

    def compile(self, schema: Mapping[str, Any]) -> Any:
        """Return the compiled grammar for ``schema``, compiling it on first use."""
        key = canonical_json(schema)
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                compiled = self._compiler.compile_json_schema(key, any_whitespace=False)
                self._compiled[key] = compiled
            return compiled

    def logits_processor(self, schema: Mapping[str, Any]) -> Any:
        """Return a fresh transformers logits processor that enforces ``schema``.

        A processor holds matcher state, so it serves exactly one ``generate()`` call.
        """
        return GrammarProcessor(self.compile(schema))

    def compile_wrapped(
        self,
        schema: Mapping[str, Any],
        *,
        wrappers: Sequence[tuple[str, str]],
        or_text: bool,
        max_calls: int = 1,
    ) -> Any:
        """Return the compiled grammar of the JSON of ``schema`` inside any of ``wrappers``
        (``(opening, closing)`` text pairs), or with ``or_text`` also an answer: text that
        starts with neither ``<``, ``{``, a backquote nor whitespace; compiled on first use.

        With ``max_calls`` above 1 a turn may hold 1 to ``max_calls`` calls, a newline between
        two: the first wrapping (the native tags) repeats whole, every other wrapping holds the
        calls inside one opening and closing (a fence around JSON lines, or bare JSON lines);
        the answer stays single and alone."""
        key = json.dumps([canonical_json(schema), list(wrappers), or_text])
        if max_calls > 1:
            key = json.dumps([key, max_calls])
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                xgr = _xgrammar()
                body = xgr.Grammar.from_json_schema(canonical_json(schema), any_whitespace=False)
                branches = []
                for index, (opening, closing) in enumerate(wrappers):
                    inner = body
                    if max_calls > 1 and index > 0:
                        inner = _repeated(body, body, max_calls)
                    branch = (
                        xgr.Grammar.concat(_literal(opening), inner, _literal(closing))
                        if opening or closing
                        else inner
                    )
                    if max_calls > 1 and index == 0:
                        branch = _repeated(branch, branch, max_calls)
                    branches.append(branch)
                if or_text:
                    branches.append(
                        xgr.Grammar.from_ebnf("root ::= [^<{`\\x00 \\t\\r\\n] [^\\x00]*")
                    )
                grammar = branches[0] if len(branches) == 1 else xgr.Grammar.union(*branches)
                compiled = self._compiler.compile_grammar(grammar)
                self._compiled[key] = compiled
            return compiled

    def wrapped_logits_processor(
        self,
        schema: Mapping[str, Any],
        *,
        wrappers: Sequence[tuple[str, str]],
        or_text: bool,
        max_calls: int = 1,
    ) -> Any:
        """Return a fresh logits processor for ``compile_wrapped``'s grammar (one call)."""
        compiled = self.compile_wrapped(
            schema, wrappers=wrappers, or_text=or_text, max_calls=max_calls
        )
        return GrammarProcessor(compiled)

    def compile_calls(self, schemas: ParallelSchemas, *, max_calls: int) -> Any:
        """Return the compiled grammar of a generic-format turn of 1 to ``max_calls`` calls
        (``schemas.first``, then ``schemas.rest`` objects, each after a newline) or, when
        ``schemas.answer`` is set, that answer alone; compiled on first use."""
        answer = canonical_json(schemas.answer) if schemas.answer is not None else None
        key = json.dumps(
            [
                "calls",
                canonical_json(schemas.first),
                canonical_json(schemas.rest),
                answer,
                max_calls,
            ]
        )
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                xgr = _xgrammar()
                first = xgr.Grammar.from_json_schema(
                    canonical_json(schemas.first), any_whitespace=False
                )
                rest = xgr.Grammar.from_json_schema(
                    canonical_json(schemas.rest), any_whitespace=False
                )
                grammar = _repeated(first, rest, max_calls)
                if answer is not None:
                    reply = xgr.Grammar.from_json_schema(answer, any_whitespace=False)
                    grammar = xgr.Grammar.union(grammar, reply)
                compiled = self._compiler.compile_grammar(grammar)
                self._compiled[key] = compiled
            return compiled

    def calls_logits_processor(self, schemas: ParallelSchemas, *, max_calls: int) -> Any:
        """Return a fresh logits processor for ``compile_calls``'s grammar (one call)."""
        compiled = self.compile_calls(schemas, max_calls=max_calls)
        return GrammarProcessor(compiled)

    def string_budget(
        self,
        *,
        max_new_tokens: int,
        thought_tokens: int | None = None,
        stop_when_short: bool = False,
    ) -> StringBudget:
        """Return a fresh ``StringBudget`` for one call (place it after the grammar processor).

        Args:
            max_new_tokens: The call's token limit; strings are closed when little is left.
            thought_tokens: Tokens the thought (the first string value) may use; ``None`` for
                no thought budget.
            stop_when_short: End a turn of several calls after a whole call when a further one
                would not fit in the tokens left (see ``StringBudget``).
        """
        import torch

        with self._lock:
            if self._quote_ids is None:
                vocab = self._info.decoded_vocab
                ids = [i for i, piece in enumerate(vocab) if piece.startswith(b'"')]
                self._quote_ids = (torch.tensor(ids, dtype=torch.long), vocab)
        quote_ids, vocab = self._quote_ids
        stop_ids = None
        if stop_when_short:
            stop_ids = torch.tensor(list(self._info.stop_token_ids), dtype=torch.long)
        return StringBudget(
            vocab,
            quote_ids,
            max_new_tokens=max_new_tokens,
            thought_tokens=thought_tokens,
            stop_ids=stop_ids,
        )


class StringBudget:
    """A logits processor that makes the model close a JSON string that has run too long.

    It follows the generated bytes to know whether decoding is inside a string. The first
    string value (the thought, in a tool-call turn) may use ``thought_tokens`` tokens; every
    string is closed once only ``reserve`` tokens remain, so the JSON can still be finished.
    Closing means keeping only the allowed tokens that start with ``"``; when the grammar allows
    none (e.g. a ``minLength`` not yet met) the scores pass through unchanged.

    With ``stop_ids`` (a turn of several calls), a turn that could end here (the grammar allows
    a stop token) ends when fewer tokens are left than the longest call so far took: a further
    call would most likely be cut off by ``max_new_tokens``.

    Its state is a function of the generated tokens in ``input_ids``, so it follows assisted
    decoding, which moves several tokens forward and back again after a rejected draft.
    """

    def __init__(
        self,
        vocab: Sequence[bytes],
        quote_ids: Any,
        *,
        max_new_tokens: int,
        thought_tokens: int | None = None,
        reserve: int | None = None,
        stop_ids: Any = None,
    ) -> None:
        """Prepare the byte table, the quote-starting token ids and the limits."""
        self._vocab = vocab
        self._quote_ids = quote_ids
        self._max_new_tokens = max_new_tokens
        self._thought_tokens = thought_tokens
        self._reserve = reserve if reserve is not None else min(16, max_new_tokens // 4)
        self._stop_ids = stop_ids
        self._prompt_length: int | None = None
        self._tokens: list[int] = []
        # _scans[k]: the scan state after k generated tokens.
        self._scans: list[_Scan] = [_Scan()]
        # Positions (generated-token counts) at which the grammar allowed a stop token.
        self._stop_points: dict[int, bool] = {}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Follow the generated tokens, then restrict ``scores`` if a string must close."""
        generated = self._follow(input_ids)
        scan = self._scans[-1]
        if self._stop_ids is not None and not scan.in_string:
            return self._maybe_stop(scores, generated)
        if not scan.in_string or scan.escaped:
            return scores
        is_thought = scan.strings_opened == 2
        over_thought = (
            is_thought
            and self._thought_tokens is not None
            and scan.string_tokens >= self._thought_tokens
        )
        if not over_thought and self._max_new_tokens - generated > self._reserve:
            return scores
        quote_scores = scores[:, self._quote_ids]
        if not bool((quote_scores > float("-inf")).any()):
            return scores
        forced = scores.new_full(scores.shape, float("-inf"))
        forced[:, self._quote_ids] = quote_scores
        return forced

    def _follow(self, input_ids: Any) -> int:
        """Bring the scan to the generated tokens of ``input_ids``; return how many there are."""
        if self._prompt_length is None:
            self._prompt_length = int(input_ids.shape[1])
        generated = input_ids[0, self._prompt_length :].tolist()
        common = common_prefix(self._tokens, generated)
        del self._tokens[common:]
        del self._scans[common + 1 :]
        for position in [p for p in self._stop_points if p > common]:
            del self._stop_points[position]
        for token in generated[common:]:
            self._tokens.append(token)
            self._scans.append(self._scans[-1].advanced(self._vocab[token]))
        return len(generated)

    def _maybe_stop(self, scores: Any, generated: int) -> Any:
        """Force a stop token where the turn may end and another call would not fit."""
        stop_scores = scores[:, self._stop_ids]
        if not bool((stop_scores > float("-inf")).any()):
            return scores
        self._stop_points[generated] = True
        longest = last_end = 0
        for point in sorted(self._stop_points):
            longest, last_end = max(longest, point - last_end), point
        if self._max_new_tokens - generated >= longest:
            return scores
        forced = scores.new_full(scores.shape, float("-inf"))
        forced[:, self._stop_ids] = stop_scores
        return forced


@dataclass(frozen=True)
class _Scan:
    """Where decoding stands in the JSON text: inside a string or not, and how far in."""

    in_string: bool = False
    escaped: bool = False
    strings_opened: int = 0
    string_tokens: int = 0

    def advanced(self, piece: bytes) -> _Scan:
        """Return the state after the bytes of one more token."""
        in_string, escaped = self.in_string, self.escaped
        opened, tokens = self.strings_opened, self.string_tokens
        # Quote and backslash are ASCII, so they never occur inside a multi-byte character.
        for byte in piece:
            if not in_string:
                if byte == 0x22:
                    # -1: the token that opens a string does not count against its budget.
                    in_string, tokens = True, -1
                    opened += 1
            elif escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        if in_string:
            tokens += 1
        return _Scan(in_string, escaped, opened, tokens)


CALL_SEPARATOR = "\n"
"""What stands between two calls of one turn, in both formats (as the chat templates write it)."""


def _repeated(first: Any, rest: Any, max_calls: int) -> Any:
    """Return the grammar of ``first``, then up to ``max_calls - 1`` times a newline and ``rest``.

    Built as ``first (sep rest (sep rest ...)?)?`` so each grammar is copied once per call it
    may stand for, and every prefix that ends after a whole call is a complete turn.
    """
    xgr = _xgrammar()
    empty = xgr.Grammar.from_ebnf('root ::= ""')
    more: Any = None
    for _ in range(max_calls - 1):
        parts = [_literal(CALL_SEPARATOR), rest] + ([more] if more is not None else [])
        more = xgr.Grammar.union(empty, xgr.Grammar.concat(*parts))
    return first if more is None else xgr.Grammar.concat(first, more)


def _literal(text: str) -> Any:
    """Return the grammar of exactly ``text``."""
    return _xgrammar().Grammar.from_ebnf(f"root ::= {json.dumps(text)}")


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:
        raise ImportError(
            "grammar-constrained decoding needs xgrammar: `pip install --no-deps xgrammar` "
            f"(plus `pip install apache-tvm-ffi`): {exc}"
        ) from exc
    return xgrammar
