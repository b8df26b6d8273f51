"""Parallel tool calls: several schema-valid calls in one reply, in both formats.

The grammars are checked with xgrammar against the tiny in-memory tokenizer; the replies are
built by ``LocalChatModel`` from decoded text (``_finish``) and decoded for real by a randomly
initialised one-layer Llama, whose noise shows what the grammar lets through.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from helpers import random_llama
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from goalgraph.llm.chat import LocalChatModel, to_chat_turns, tools_instruction
from goalgraph.llm.grammar import (
    GrammarCache,
    StringBudget,
    parallel_call_schemas,
    parse_tool_calls,
    to_openai_tools,
)
from goalgraph.llm.native_tools import (
    ANSWER_OR_CALL,
    CALL_ONLY,
    native_call_schema,
    native_turns,
    parse_native_calls,
)

xgr = pytest.importorskip("xgrammar")


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return "sunny"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS = to_openai_tools([get_weather, add])
NAMES = ["get_weather", "add"]
K = 3


def _call(city: str) -> dict[str, Any]:
    return {"name": "get_weather", "arguments": {"city": city}}


def _tagged(*calls: dict[str, Any]) -> str:
    return "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)


def _matches(compiled: Any, text: str) -> bool:
    matcher = xgr.GrammarMatcher(compiled)
    return bool(matcher.accept_string(text)) and matcher.is_completed()


# -- native format: the grammar ------------------------------------------------------------------


def _native(grammars: GrammarCache, *, may_answer: bool, max_calls: int = K) -> Any:
    wrappers = ANSWER_OR_CALL if may_answer else CALL_ONLY
    return grammars.compile_wrapped(
        native_call_schema(TOOLS, NAMES), wrappers=wrappers, or_text=may_answer, max_calls=max_calls
    )


@pytest.mark.parametrize("may_answer", [False, True])
def test_native_grammar_takes_one_to_k_tagged_calls(grammars: GrammarCache, may_answer: bool):
    compiled = _native(grammars, may_answer=may_answer)
    cities = ["Oslo", "Rome", "Lima", "Kyiv"]
    for count in range(1, K + 1):
        assert _matches(compiled, _tagged(*map(_call, cities[:count]))), count
    assert not _matches(compiled, _tagged(*map(_call, cities[: K + 1])))
    mixed = _tagged(_call("Oslo"), {"name": "add", "arguments": {"a": 1, "b": 2}})
    assert _matches(compiled, mixed)
    bad = _tagged(_call("Oslo"), {"name": "add", "arguments": {"a": "one", "b": 2}})
    assert not _matches(compiled, bad)
    # Two calls are separated by exactly one newline, as the template writes them.
    assert not _matches(compiled, _tagged(_call("Oslo")) + "\n\n" + _tagged(_call("Rome")))
    assert not _matches(compiled, _tagged(_call("Oslo")) + _tagged(_call("Rome")))


def test_native_grammar_may_stop_after_any_complete_call(grammars: GrammarCache):
    matcher = xgr.GrammarMatcher(_native(grammars, may_answer=False))
    for city in ("Oslo", "Rome", "Lima"):
        prefix = "" if city == "Oslo" else "\n"
        assert matcher.accept_string(prefix + _tagged(_call(city)))
        assert matcher.is_completed(), city  # EOS allowed here
    assert not matcher.accept_string("\n")  # the k-th call was the last one


def test_native_answer_stays_alone_and_drifted_wrappings_hold_json_lines(grammars: GrammarCache):
    compiled = _native(grammars, may_answer=True)
    assert _matches(compiled, "Oslo is sunny.")
    assert not _matches(compiled, _tagged(_call("Oslo")) + "\nOslo is sunny.")
    lines = [json.dumps(_call(city)) for city in ("Oslo", "Rome", "Lima", "Kyiv")]
    for count in range(1, K + 1):
        assert _matches(compiled, "```json\n" + "\n".join(lines[:count]) + "\n```"), count
        assert _matches(compiled, "\n".join(lines[:count])), count
    assert not _matches(compiled, "```json\n" + "\n".join(lines) + "\n```")
    assert not _matches(compiled, "\n".join(lines))
    fenced = f"```json\n{lines[0]}\n```"
    assert not _matches(compiled, fenced + "\n" + fenced)  # one fence, not several
    assert not _matches(compiled, lines[0] + "\n" + _tagged(_call("Rome")))  # no mixed wrappings


def test_native_default_grammar_still_takes_one_call(grammars: GrammarCache):
    compiled = _native(grammars, may_answer=False, max_calls=1)
    assert _matches(compiled, _tagged(_call("Oslo")))
    assert not _matches(compiled, _tagged(_call("Oslo"), _call("Rome")))


# -- generic JSON format: the grammar ------------------------------------------------------------


def _line(thought: str | None = None, use_tool: bool | None = None, **fields: Any) -> str:
    lead: dict[str, Any] = {}
    if thought is not None:
        lead["thought"] = thought
    if use_tool is not None:
        lead["use_tool"] = use_tool
    return json.dumps({**lead, **fields})


def _generic(grammars: GrammarCache, tool_choice: Any, no_call: Any = "response") -> Any:
    schemas = parallel_call_schemas(TOOLS, tool_choice=tool_choice, no_call=no_call)
    return grammars.compile_calls(schemas, max_calls=K)


def test_generic_grammar_takes_one_to_k_lines_only_the_first_with_a_thought(grammars):
    compiled = _generic(grammars, "any")
    first = _line("two cities", **_call("Oslo"))
    later = [_line(**_call(city)) for city in ("Rome", "Lima", "Kyiv")]
    for count in range(0, K):
        assert _matches(compiled, "\n".join([first, *later[:count]])), count
    assert not _matches(compiled, "\n".join([first, *later]))
    assert not _matches(compiled, "\n".join([first, _line("again", **_call("Rome"))]))
    assert not _matches(compiled, _line(**_call("Oslo")))  # the first call has its thought
    assert not _matches(compiled, _line("t", response="hi"))  # a call is required


def test_generic_answer_stands_alone(grammars: GrammarCache):
    compiled = _generic(grammars, "auto")
    answer = _line("t", response="It is sunny.")
    call = _line("t", **_call("Oslo"))
    assert _matches(compiled, answer)
    assert _matches(compiled, call + "\n" + _line(**_call("Rome")))
    assert not _matches(compiled, answer + "\n" + _line(**_call("Rome")))
    assert not _matches(compiled, call + "\n" + _line(response="It is sunny."))


def test_generic_decision_style_decides_once(grammars: GrammarCache):
    compiled = _generic(grammars, "auto", no_call="decision")
    call = _line("t", use_tool=True, **_call("Oslo"))
    assert _matches(compiled, call + "\n" + _line(**_call("Rome")))
    assert not _matches(compiled, call + "\n" + _line(use_tool=True, **_call("Rome")))
    assert _matches(compiled, _line("t", use_tool=False, response="no"))


def test_parallel_schemas_keep_hoisted_defs_and_the_tool_choice():
    only = parallel_call_schemas(TOOLS, tool_choice="add")
    assert only.answer is None
    assert only.first["properties"]["name"] == {"const": "add"}
    assert only.rest["properties"]["name"] == {"const": "add"}
    assert "thought" not in only.rest["properties"]
    auto = parallel_call_schemas(TOOLS)
    assert auto.answer is not None and "response" in auto.answer["properties"]
    assert [b["properties"]["name"]["const"] for b in auto.first["anyOf"]] == NAMES


def test_string_budget_ends_the_turn_when_a_further_call_would_not_fit():
    import torch

    vocab = [b"{", b"}", b"\n", b"<eos>"]
    budget = StringBudget(
        vocab, torch.tensor([], dtype=torch.long), max_new_tokens=10, stop_ids=torch.tensor([3])
    )
    ids = [0]  # the prompt
    open_scores = torch.zeros(1, 4)
    open_scores[0, 3] = float("-inf")  # inside a call the grammar forbids stopping

    def step(token: int | None, scores: torch.Tensor) -> torch.Tensor:
        if token is not None:
            ids.append(token)
        return budget(torch.tensor([ids]), scores.clone())

    step(None, open_scores)
    step(0, open_scores)
    step(0, open_scores)
    # After a call of three tokens, seven are left: another call may start.
    assert torch.isfinite(step(1, torch.zeros(1, 4))).all()
    for token in (2, 0, 0):
        step(token, open_scores)
    # After the second call (four tokens), three are left: only the stop token remains.
    forced = step(1, torch.zeros(1, 4))
    assert torch.isinf(forced[0, :3]).all() and torch.isfinite(forced[0, 3])
    # Where the grammar allows no stop the scores pass through.
    assert torch.isfinite(step(2, open_scores)[0, :3]).all()


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_tool_calls_reads_every_line_and_keeps_calls_before_a_cut_one():
    text = "\n".join([_line("t", **_call("Oslo")), _line(**_call("Rome"))])
    decisions = parse_tool_calls(text + '\n{"name": "get_weather", "argu')
    assert [(d.name, d.arguments, d.complete) for d in decisions] == [
        ("get_weather", {"city": "Oslo"}, True),
        ("get_weather", {"city": "Rome"}, True),
        (None, None, False),
    ]
    assert decisions[0].thought == "t"
    [answer] = parse_tool_calls(_line("t", response="hi"))
    assert answer.response == "hi"
    with pytest.raises(ValueError):
        parse_tool_calls("no json")


def test_parse_native_calls_reads_every_block_and_keeps_calls_before_a_cut_one():
    text = _tagged(_call("Oslo"), _call("Rome")) + '\n<tool_call>\n{"name": "get_weather", "ar'
    decisions = parse_native_calls(text)
    assert [(d.name, d.complete) for d in decisions] == [
        ("get_weather", True),
        ("get_weather", True),
        (None, False),
    ]
    assert [d.arguments for d in decisions[:2]] == [{"city": "Oslo"}, {"city": "Rome"}]
    # Cut between the JSON and its closing tag: the call itself is whole.
    [whole] = parse_native_calls(f"<tool_call>\n{json.dumps(_call('Oslo'))}\n</tool")
    assert whole.complete and whole.arguments == {"city": "Oslo"}
    assert parse_native_calls("It is sunny.")[0].response == "It is sunny."
    lines = "\n".join(json.dumps(_call(city)) for city in ("Oslo", "Rome"))
    for text in (f"```json\n{lines}\n```", lines):
        decisions = parse_native_calls(text)
        assert [d.arguments for d in decisions] == [{"city": "Oslo"}, {"city": "Rome"}]


# -- rendering -----------------------------------------------------------------------------------


TWO_CALLS = AIMessage(
    "two cities",
    tool_calls=[
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "1"},
        {"name": "get_weather", "args": {"city": "Rome"}, "id": "2"},
    ],
)


def test_several_calls_render_as_the_grammar_writes_them(grammars: GrammarCache):
    text = to_chat_turns([TWO_CALLS], no_call="decision")[0]["content"]
    first, second = text.split("\n")
    assert json.loads(first) == {"thought": "two cities", "use_tool": True, **_call("Oslo")}
    assert json.loads(second) == _call("Rome")
    assert _matches(_generic(grammars, "auto", no_call="decision"), text)
    assert [t["function"]["arguments"] for t in native_turns([TWO_CALLS])[0]["tool_calls"]] == [
        {"city": "Oslo"},
        {"city": "Rome"},
    ]


def test_the_instruction_mentions_further_calls_only_when_parallel():
    assert "further call" in tools_instruction(TOOLS, "any", parallel=True)
    assert "further call" not in tools_instruction(TOOLS, "any")


# -- LocalChatModel ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_chat(tiny_tokenizer: Any) -> LocalChatModel:
    model = random_llama(tiny_tokenizer)
    return LocalChatModel.from_model(
        model,
        tiny_tokenizer,
        max_new_tokens=120,
        temperature=1.0,
        thought_max_length=8,
        max_parallel_calls=K,
    )


def test_parallel_is_opt_in(tiny_chat: LocalChatModel):
    assert LocalChatModel.model_fields["max_parallel_calls"].default == 4
    single = tiny_chat.bind_tools([get_weather], tool_choice="any", parallel_tool_calls=False)
    assert "parallel_tool_calls" not in single.kwargs  # type: ignore[attr-defined]
    call = tiny_chat._prepare([HumanMessage("hi")], None, single.kwargs)  # type: ignore[attr-defined]
    assert call.max_calls == 1
    several = tiny_chat.bind_tools([get_weather], tool_choice="any", parallel_tool_calls=True)
    call = tiny_chat._prepare([HumanMessage("hi")], None, several.kwargs)  # type: ignore[attr-defined]
    assert call.max_calls == K


@pytest.mark.parametrize("tool_format", ["json", "native"])
def test_a_reply_keeps_every_complete_call_with_its_own_id(
    tiny_chat: LocalChatModel, tool_format: Any
):
    chat = tiny_chat.model_copy(update={"tool_format": tool_format, "thought": False})
    bound = chat.bind_tools(TOOLS, tool_choice="any", parallel_tool_calls=True)
    call = chat._prepare([HumanMessage("hi")], None, bound.kwargs)  # type: ignore[attr-defined]
    calls = [_call("Oslo"), _call("Rome")]
    if tool_format == "native":
        text = _tagged(*calls) + '\n<tool_call>\n{"name": "add", "argu'
    else:
        text = "\n".join(json.dumps(c) for c in calls) + '\n{"name": "add", "argu'
    message = chat._finish(call, text)
    assert [c["args"] for c in message.tool_calls] == [{"city": "Oslo"}, {"city": "Rome"}]
    [cut] = message.invalid_tool_calls
    assert "cut off" in str(cut["error"])
    ids = [c["id"] for c in message.tool_calls] + [cut["id"]]
    assert len(set(ids)) == 3


def test_a_random_model_emits_only_schema_valid_calls_up_to_the_bound(tiny_chat: LocalChatModel):
    import torch

    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    counts = []
    for tool_format in ("json", "native"):
        chat = tiny_chat.model_copy(update={"tool_format": tool_format, "max_new_tokens": 400})
        bound = chat.bind_tools(TOOLS, tool_choice="any", parallel_tool_calls=True)
        torch.manual_seed(5)
        for _ in range(4):
            message = bound.invoke("Weather in Oslo and Rome?")
            assert message.tool_calls and not message.invalid_tool_calls
            assert len(message.tool_calls) <= K
            for call in message.tool_calls:
                jsonschema.validate(call["args"], schemas[call["name"]])
            counts.append(len(message.tool_calls))
    assert max(counts) >= 2, counts  # the grammar does let several calls through
