"""The native tool-call format: turns a tool-aware template renders, its grammar, its parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from goalgraph.llm.grammar import GrammarCache, to_openai_tools
from goalgraph.llm.native_tools import (
    ANSWER_OR_CALL,
    CALL_ONLY,
    native_call_schema,
    native_turns,
    parse_native_output,
    template_has_tool_calls,
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
CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})


def _accepts(grammars: GrammarCache, text: str, *, may_answer: bool) -> bool:
    schema = native_call_schema(TOOLS, ["get_weather", "add"])
    wrappers = ANSWER_OR_CALL if may_answer else CALL_ONLY
    compiled = grammars.compile_wrapped(schema, wrappers=wrappers, or_text=may_answer)
    matcher = xgr.GrammarMatcher(compiled)
    return bool(matcher.accept_string(text)) and matcher.is_completed()


def test_a_required_call_is_a_tagged_schema_valid_call_and_nothing_else(grammars):
    assert _accepts(grammars, f"<tool_call>\n{CALL}\n</tool_call>", may_answer=False)
    assert not _accepts(grammars, CALL, may_answer=False)
    assert not _accepts(grammars, "Paris is sunny.", may_answer=False)
    bad = json.dumps({"name": "add", "arguments": {"a": "one", "b": 2}})
    assert not _accepts(grammars, f"<tool_call>\n{bad}\n</tool_call>", may_answer=False)
    unknown = json.dumps({"name": "rm", "arguments": {}})
    assert not _accepts(grammars, f"<tool_call>\n{unknown}\n</tool_call>", may_answer=False)


def test_where_the_model_may_answer_a_call_may_be_fenced_or_bare(grammars):
    for text in (f"<tool_call>\n{CALL}\n</tool_call>", f"```json\n{CALL}\n```", CALL):
        assert _accepts(grammars, text, may_answer=True), text
    assert _accepts(grammars, "Paris is the capital of France.", may_answer=True)
    # A JSON block that is not a valid call is neither a call nor an answer.
    assert not _accepts(grammars, '{"name": "rm", "arguments": {}}', may_answer=True)
    assert not _accepts(grammars, "```python\nprint(1)\n```", may_answer=True)


@pytest.mark.parametrize(
    "text",
    [f"<tool_call>\n{CALL}\n</tool_call>", f"```json\n{CALL}\n```", CALL, f"  {CALL}\n"],
)
def test_every_wrapping_parses_to_the_call(text):
    decision = parse_native_output(text)
    assert (decision.name, decision.arguments, decision.complete) == (
        "get_weather",
        {"city": "Paris"},
        True,
    )


def test_text_parses_to_an_answer_and_a_cut_call_is_incomplete():
    assert parse_native_output("It is sunny.").response == "It is sunny."
    cut = parse_native_output('<tool_call>\n{"name": "get_weather", "arguments": {"ci')
    assert not cut.complete and cut.response is None


def test_turns_keep_calls_and_tool_results_for_the_template():
    turns = native_turns(
        [
            SystemMessage("sys"),
            HumanMessage("weather?"),
            AIMessage(
                "", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "1"}]
            ),
            ToolMessage("rain", tool_call_id="1"),
        ]
    )
    assert [turn["role"] for turn in turns] == ["system", "user", "assistant", "tool"]
    assert turns[2]["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
    assert turns[3]["content"] == "rain"


def test_only_templates_that_render_tool_calls_use_the_native_format(tiny_tokenizer: Any):
    assert not template_has_tool_calls(tiny_tokenizer)  # plain ChatML, like SmolLM2's

    class Tokenizer:
        chat_template = "{% if tools %}<tools>{{ tools }}</tools>{% endif %}<tool_call>"

    assert template_has_tool_calls(Tokenizer())
