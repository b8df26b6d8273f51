"""Assisted decoding on the bundled model: the agent's plan and tool turns come out the same
with drafts as without, through the prefix KV cache, in fewer forward passes."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from goalgraph.llm.chat import LocalChatModel
from goalgraph.plan import plan_schema
from goalgraph.spec import CacheSpec, ModelSpec

pytest.importorskip("xgrammar")


@pytest.fixture(scope="module")
def chat() -> LocalChatModel:
    # float32: bfloat16 sums a many-token pass in another order than a one-token pass, which may
    # flip a near tie; in float32 the greedy output must match token for token.
    return LocalChatModel.from_spec(
        ModelSpec(name="smollm2", dtype="float32", threads=1, cache=CacheSpec(enabled=False))
    )


def _calculator_tool() -> dict[str, object]:
    return {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    }


def test_plans_and_calls_match_without_drafts_in_fewer_passes(chat: LocalChatModel) -> None:
    messages = [
        SystemMessage("You are a planner. Break the goal into steps that each use one tool."),
        HumanMessage("Compute 12*(3+4), then write the result to result.txt."),
    ]
    schema = plan_schema(["calculator", "write_file"])
    stats = chat.draft_stats
    outputs = {}
    for draft_tokens in (0, 10):
        model = chat.model_copy(update={"draft_tokens": draft_tokens})
        passes, accepted = stats.passes, stats.accepted
        plan = model.with_structured_output(schema, include_raw=True).invoke(messages)
        call = model.bind_tools([_calculator_tool()], tool_choice="any").invoke(messages)
        outputs[draft_tokens] = (
            plan["raw"].content,
            call.tool_calls[0]["args"],
            call.usage_metadata,
        )
        if draft_tokens:
            assert stats.passes > passes and stats.accepted > accepted
        else:
            assert (stats.passes, stats.accepted) == (passes, accepted)
    assert outputs[10] == outputs[0]
