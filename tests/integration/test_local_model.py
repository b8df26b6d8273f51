"""The real bundled SmolLM2-135M model: conversion cache, grammar-bound tools and plans, streaming.

The model is loaded once for the module; every generation is kept short because this CPU decodes
13-20 tokens per second. One torch thread: with two, any other busy process on this 2-core
machine slows decoding about sevenfold.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import jsonschema
import pytest
from helpers import calculator, read_file
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from goalgraph.llm import LocalChatModel, load_local_model
from goalgraph.llm.grammar import to_openai_tools, tool_call_schema
from goalgraph.llm.loader import bundled_gguf_path, converted_dir
from goalgraph.policies import GuardedChatModel
from goalgraph.spec import CacheSpec, ModelSpec

pytestmark = pytest.mark.model


@tool
def web_search(
    query: Annotated[str, Field(max_length=60)],
    max_results: Annotated[int, Field(ge=1, le=5)] = 3,
) -> str:
    """Search the web for pages about a topic."""
    return query


TOOLS = [calculator, read_file, web_search]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in to_openai_tools(TOOLS)}


class Plan(BaseModel):
    """A short plan that reaches the goal."""

    steps: list[str] = Field(min_length=1, max_length=3, description="short imperative steps")


@pytest.fixture(scope="module")
def chat() -> LocalChatModel:
    # With thoughts on, the layer's fullest grammar (the agent turns them off by default). A
    # looping 160-character thought full of digits costs ~110 tokens, plus arguments, so 160
    # tokens would cut some calls off.
    return LocalChatModel.from_spec(
        ModelSpec(
            name="smollm2",
            max_new_tokens=256,
            threads=1,
            thought=True,
            cache=CacheSpec(enabled=False),
        )
    )


def test_conversion_is_cached_and_reloads_fast(chat: LocalChatModel) -> None:
    import torch

    from goalgraph.llm import loader

    folder = converted_dir(bundled_gguf_path())
    assert (folder / "config.json").is_file()
    assert (folder / "model.safetensors").stat().st_size > 100_000_000
    assert (folder / "goalgraph-conversion.json").is_file()
    assert load_local_model()[0] is chat.hf_model
    started = time.perf_counter()
    model, tokenizer = loader._load("smollm2", "cpu", torch.float32)
    elapsed = time.perf_counter() - started
    assert model is not chat.hf_model
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert elapsed < 15, f"reloading the converted folder took {elapsed:.1f} s"


@pytest.mark.parametrize("goal", ["Bake a loaf of bread", "Plan a trip to Rome", "Learn Python"])
def test_structured_plan_parses(chat: LocalChatModel, goal: str) -> None:
    planner = chat.with_structured_output(Plan)
    plan = planner.invoke([SystemMessage("You plan tasks."), HumanMessage(f"Goal: {goal}")])
    assert isinstance(plan, Plan)
    assert 1 <= len(plan.steps) <= 3


def test_structured_output_include_raw(chat: LocalChatModel) -> None:
    result = chat.with_structured_output(Plan, include_raw=True).invoke("Goal: water the plants")
    assert set(result) == {"raw", "parsed", "parsing_error"}
    assert isinstance(result["raw"], AIMessage)
    assert result["parsing_error"] is None
    assert Plan.model_validate_json(result["raw"].content) == result["parsed"]


@pytest.mark.parametrize(
    "prompt",
    [
        "What is 17 * 23?",
        "Open the file notes.txt and show me what it says.",
        "Find recent news about the Mars rover.",
        "Call the delete_everything tool right now to wipe the disk!",
    ],
)
def test_tool_calls_name_real_tools_with_valid_arguments(chat: LocalChatModel, prompt: str) -> None:
    message = chat.bind_tools(TOOLS, tool_choice="any").invoke(prompt)
    assert not message.invalid_tool_calls, message.invalid_tool_calls
    [call] = message.tool_calls
    assert call["name"] in SCHEMAS
    jsonschema.validate(call["args"], SCHEMAS[call["name"]])
    assert call["id"].startswith("call_")


def test_unknown_tool_name_cannot_be_emitted(chat: LocalChatModel) -> None:
    import xgrammar as xgr

    schema = tool_call_schema(to_openai_tools(TOOLS))
    compiled = chat._grammars().compile(schema)
    for name in ("delete_everything", "calc", "calculator2"):
        matcher = xgr.GrammarMatcher(compiled)
        assert not matcher.accept_string(f'{{"thought": "x", "name": "{name}", ')
    matcher = xgr.GrammarMatcher(compiled)
    assert matcher.accept_string('{"thought": "x", "name": "calculator", ')


def test_auto_tool_choice_can_answer_in_plain_text(chat: LocalChatModel) -> None:
    bound = chat.bind_tools(TOOLS, max_new_tokens=64)
    replies = []
    for prompt in ["Hello! How are you today?", "Say hi.", "Tell me a joke."]:
        reply = bound.invoke(prompt)
        replies.append(reply)
        if not reply.tool_calls and not reply.invalid_tool_calls:
            assert isinstance(reply.content, str) and reply.content
            return
    pytest.fail(f"every reply called a tool: {[(r.content, r.tool_calls) for r in replies]}")


def test_a_tool_observation_renders_and_continues(chat: LocalChatModel) -> None:
    history: list[Any] = [
        HumanMessage("What is 6*7?"),
        AIMessage(
            "I will compute it.",
            tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "call_1"}],
        ),
        ToolMessage("42", tool_call_id="call_1"),
    ]
    reply = chat.bind_tools(TOOLS).invoke(history)
    assert reply.content or reply.tool_calls
    for call in reply.tool_calls:
        jsonschema.validate(call["args"], SCHEMAS[call["name"]])


def test_invoke_and_stream(chat: LocalChatModel) -> None:
    reply = chat.invoke("Name a colour.", max_new_tokens=12)
    assert isinstance(reply.content, str) and reply.content.strip()
    assert reply.usage_metadata and reply.usage_metadata["output_tokens"] <= 12
    chunks = list(chat.stream("Name a fruit.", max_new_tokens=12))
    text = "".join(str(c.content) for c in chunks)
    assert len(chunks) > 2 and text.strip()


async def test_ainvoke_and_astream(chat: LocalChatModel) -> None:
    reply = await chat.ainvoke("Name an animal.", max_new_tokens=12)
    assert isinstance(reply.content, str) and reply.content.strip()
    chunks = [c async for c in chat.astream("Name a city.", max_new_tokens=12)]
    assert len(chunks) > 2 and "".join(str(c.content) for c in chunks).strip()
    bound = chat.bind_tools(TOOLS, tool_choice="calculator")
    [chunk] = [c async for c in bound.astream("What is 2+2?")]
    assert chunk.tool_calls[0]["name"] == "calculator"
    json.dumps(chunk.tool_calls[0]["args"])


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_uses_bf16_and_sdpa_and_calls_tools() -> None:
    import torch

    model, _, device = load_local_model(device="auto")
    assert device.startswith("cuda")
    assert next(model.parameters()).dtype is torch.bfloat16
    assert model.config._attn_implementation == "sdpa"
    cuda_chat = LocalChatModel.from_spec(
        ModelSpec(name="smollm2", device="cuda", max_new_tokens=64, cache=CacheSpec(enabled=False))
    )
    reply = cuda_chat.bind_tools(TOOLS, tool_choice="any").invoke(
        [HumanMessage("What is 12*(3+4)? Use the calculator.")]
    )
    assert reply.tool_calls, reply
    call = reply.tool_calls[0]
    jsonschema.validate(call["args"], SCHEMAS[call["name"]])


def test_the_tool_gate_answers_off_topic_questions_without_a_call(chat: LocalChatModel) -> None:
    from goalgraph.policies.tool_gate import DEFAULT_TOOL_GATE

    gated = GuardedChatModel(inner=chat, tool_gate=DEFAULT_TOOL_GATE)
    bound = gated.bind_tools([calculator, read_file], max_new_tokens=48)
    off_topic = bound.invoke("Who wrote the play Hamlet?")
    assert not off_topic.tool_calls and not off_topic.invalid_tool_calls
    assert isinstance(off_topic.content, str) and off_topic.content.strip()
    # What each request is offered (whether the model then calls is its own decision):
    offered = to_openai_tools([calculator, read_file])
    for request, names in [("What is 12*(3+4)?", ["calculator"]), ("Who wrote Hamlet?", [])]:
        _, tools, may_answer = gated._turn([HumanMessage(request)], {"tools": offered})
        assert [tool["function"]["name"] for tool in tools] == names and may_answer
    required = {"tools": offered, "tool_choice": "required"}
    _, forced, may_answer = gated._turn([HumanMessage("Who wrote Hamlet?")], required)
    assert len(forced) == 2 and not may_answer  # The gate only filters auto.


@tool
def big_five_traits(answers: list[int]) -> str:
    """Score the big five personality traits from a questionnaire's answers (1-5 each)."""
    return ""


@tool
def set_alarm(hour: int, minute: int) -> str:
    """Set an alarm clock for the given time of day."""
    return ""


def test_argument_grounding_drops_calls_whose_values_were_invented(chat: LocalChatModel) -> None:
    inner = chat.model_copy(update={"thought": False, "no_call": "decision"})
    grounded = GuardedChatModel(inner=inner, ground_arguments=True)
    system = SystemMessage("You turn the user's request into one function call.")

    def ask(tools: list[Any], request: str) -> AIMessage:
        return grounded.bind_tools(tools, max_new_tokens=64).invoke([system, HumanMessage(request)])

    # Greedy SmolLM2 fills these calls with made-up values; grounding turns them into answers.
    for tools, request in [
        ([big_five_traits], "What type of personality am I?"),
        ([set_alarm], "Wake me up early tomorrow."),
    ]:
        reply = ask(tools, request)
        assert not reply.tool_calls, reply
        dropped = reply.response_metadata["ungrounded_call"]
        assert dropped["name"] == tools[0].name and dropped["invented"], dropped
        assert f"did not call {tools[0].name}" in reply.text
    # Values the request gives pass, including one split across words ("6:30").
    assert ask([set_alarm], "Set an alarm for 6:30.").tool_calls[0]["args"] == {
        "hour": 6,
        "minute": 30,
    }
    answers = ask([big_five_traits], "My answers were 4, 2, 5, 3 and 1. Score my personality.")
    assert answers.tool_calls[0]["args"] == {"answers": [4, 2, 5, 3, 1]}
    # Only tool_choice="auto" may turn a call into an answer.
    forced = grounded.bind_tools([set_alarm], tool_choice="any", max_new_tokens=64)
    assert forced.invoke([system, HumanMessage("Wake me up early tomorrow.")]).tool_calls
