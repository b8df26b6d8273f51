"""qwen2.5-coder-0.5b on the real path: its own tool-call format under the grammar, and the
third-party stockroom MCP server end to end through the agent.

``make test`` installs the model (``goalgraph models install qwen2.5-coder-0.5b``); elsewhere the
tests are skipped with the install command as the reason.
"""

from __future__ import annotations

import pytest
from helpers import needs_ladder_model
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

MODEL = "qwen2.5-coder-0.5b"

pytestmark = needs_ladder_model(MODEL)


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city."""
    return "12 degrees"


@tool
def add_numbers(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture(scope="module")
def chat():
    from goalgraph.llm import LocalChatModel
    from goalgraph.spec import ModelSpec

    return LocalChatModel.from_spec(ModelSpec(name=MODEL, cache={"enabled": False}, threads=1))


def test_qwen_calls_in_its_own_format_under_the_grammar(chat) -> None:
    assert chat.uses_native_tools() and chat.goalgraph_profile == "standard"
    bound = chat.bind_tools([get_weather, add_numbers], tool_choice="any", max_new_tokens=48)
    call = chat._prepare([HumanMessage("Weather in Paris?")], None, bound.kwargs)
    assert "<tools>" in call.prompt and call.native  # the template's own tool listing
    reply = bound.invoke("What's the weather in Paris, in fahrenheit?")
    assert reply.tool_calls[0]["name"] == "get_weather"
    assert reply.tool_calls[0]["args"]["city"] == "Paris"
    assert reply.tool_calls[0]["args"].get("unit") in ("celsius", "fahrenheit")


def test_where_qwen_may_answer_it_calls_or_answers_and_nothing_else(chat) -> None:
    bound = chat.bind_tools([add_numbers], max_new_tokens=48)
    reply = bound.invoke("Add 17 and 25 with the tool.")
    # Tagged, fenced or bare, a call must be schema-valid: an int pair for add_numbers.
    assert not reply.invalid_tool_calls
    for call in reply.tool_calls:
        assert call["name"] == "add_numbers" and all(
            isinstance(v, int) for v in call["args"].values()
        )


def test_qwen_makes_two_independent_calls_at_once(chat) -> None:
    bound = chat.bind_tools(
        [get_weather], tool_choice="any", parallel_tool_calls=True, max_new_tokens=96
    )
    reply = bound.invoke("What's the weather in Paris and in Tokyo?")
    assert not reply.invalid_tool_calls
    assert sorted(call["args"]["city"] for call in reply.tool_calls) == ["Paris", "Tokyo"]
    assert len({call["id"] for call in reply.tool_calls}) == 2
    # Without parallel_tool_calls the same request gets one call, as before.
    single = chat.bind_tools([get_weather], tool_choice="any", max_new_tokens=96)
    assert len(single.invoke("What's the weather in Paris and in Tokyo?").tool_calls) == 1


def test_the_template_renders_several_calls_as_consecutive_blocks(chat) -> None:
    history = [
        HumanMessage("Weather in Paris and Tokyo?"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "a"},
                {"name": "get_weather", "args": {"city": "Tokyo"}, "id": "b"},
            ],
        ),
        ToolMessage("12 degrees", tool_call_id="a"),
        ToolMessage("20 degrees", tool_call_id="b"),
    ]
    bound = chat.bind_tools([get_weather], parallel_tool_calls=True)
    prompt = chat._prepare(history, None, bound.kwargs).prompt
    paris = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    tokyo = '{"name": "get_weather", "arguments": {"city": "Tokyo"}}'
    # Exactly the text the parallel grammar lets the model write.
    assert f"<tool_call>\n{paris}\n</tool_call>\n<tool_call>\n{tokyo}\n</tool_call>" in prompt
    assert prompt.count("<tool_response>") == 2


def test_the_third_party_stockroom_server_works_end_to_end(tmp_path) -> None:
    from goalgraph.eval.suite import default_suite_dir, load_suite, merge_overrides
    from goalgraph.eval.tasks import run_suite

    suite = default_suite_dir()
    assert suite is not None
    task = next(t for t in load_suite([suite]) if t.id == "shop-open-orders")  # a tuning task
    # A few steps are enough to see the server's tools work; success is the benchmark's to tell.
    # The goal names the SKU, so whether a call works does not hang on the model guessing one.
    short = merge_overrides(task.spec, {"limits": {"max_steps": 3}})
    goal = "How many units of the product with SKU hinge-brass are in stock?"
    result = run_suite([task.model_copy(update={"spec": short, "goal": goal})], MODEL)
    (record,) = result.runs
    stockroom = {"list_orders", "get_order", "find_customer", "search_products", "get_product"}
    calls = [call for call in record.calls if call.tool in stockroom]
    assert calls, record  # the agent called the third-party server's tools ...
    assert any(call.ok for call in calls), record  # ... and the server answered


def test_the_demo_goal_writes_its_file_on_the_default_model(tmp_path) -> None:
    """``make demo``'s goal, as the README shows it: two tools, and the file is written."""
    from goalgraph import Agent, AgentSpec

    spec = AgentSpec(
        model={"name": MODEL, "cache": {"enabled": False}},
        workspace=tmp_path / "ws",
        checkpoint_path=tmp_path / "cp.sqlite",
        memory={"path": tmp_path / "memory.sqlite"},
    )
    with Agent(spec) as agent:
        result = agent.run("Compute 12*(3+4), then write the result to result.txt")
    # Whether or not the model plans the write itself, the plan has it (the tool's strong cue).
    assert [step["tool"] for step in result.plan][-1] == "write_file", result.plan
    assert result.status == "done", result.message
    assert (tmp_path / "ws" / "result.txt").read_text().strip() == "84"
