"""The prefix KV cache on the real bundled model: same greedy output, hits, invalidation, fallback.

Every comparison runs the same call with ``prefix_cache=False`` and with it on (a miss, then a
hit), so the cached path must reproduce the plain pipeline token for token, under the xgrammar
grammar and when streaming too. Generations are kept short (this CPU decodes ~13 tokens/s); one
torch thread, as in ``test_local_model.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from helpers import calculator, read_file
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from goalgraph.llm import LocalChatModel
from goalgraph.llm import prefix_cache as prefix_cache_module
from goalgraph.llm.chat import to_chat_turns
from goalgraph.llm.prefix_cache import PrefixCache, PrefixCacheStats
from goalgraph.spec import CacheSpec, ModelSpec

pytestmark = pytest.mark.model

SYSTEM = (
    "You are goalgraph, an agent that reaches goals step by step. Think briefly, prefer tools "
    "over guessing, never invent file contents, and keep every answer short and concrete."
)


class Plan(BaseModel):
    """A short plan that reaches the goal."""

    steps: list[str] = Field(min_length=1, max_length=2, description="short imperative steps")


@pytest.fixture(scope="module")
def chat() -> LocalChatModel:
    model = LocalChatModel.from_spec(
        ModelSpec(name="smollm2", max_new_tokens=24, threads=1, cache=CacheSpec(enabled=False)),
        thought_max_tokens=12,
    )
    PrefixCache.for_model(model.hf_model).clear()
    return model


@pytest.fixture(scope="module")
def plain(chat: LocalChatModel) -> LocalChatModel:
    return chat.model_copy(update={"prefix_cache": False})


def _stats(chat: LocalChatModel) -> PrefixCacheStats:
    return dataclasses.replace(chat.prefix_cache_stats)


def _delta(chat: LocalChatModel, before: PrefixCacheStats) -> tuple[int, int, int]:
    now = chat.prefix_cache_stats
    return (
        now.hits - before.hits,
        now.misses - before.misses,
        now.fallbacks - before.fallbacks,
    )


def _comparable(reply: Any) -> Any:
    if not isinstance(reply, AIMessage):
        return reply
    return (
        reply.content,
        [(c["name"], c["args"]) for c in reply.tool_calls],
        [(c["name"], c["args"]) for c in reply.invalid_tool_calls],
        reply.usage_metadata,
    )


def _check_same(
    chat: LocalChatModel, plain: LocalChatModel, run: Callable[[LocalChatModel], Any]
) -> Any:
    """Run ``run`` without the cache, then with it (miss, hit); all three must agree."""
    expected = _comparable(run(plain))
    before = _stats(chat)
    assert _comparable(run(chat)) == expected
    assert _delta(chat, before) == (0, 1, 0)
    before = _stats(chat)
    assert _comparable(run(chat)) == expected
    assert _delta(chat, before) == (1, 0, 0)
    return expected


def _messages(system: str, question: str) -> list[BaseMessage]:
    return [SystemMessage(system), HumanMessage(question)]


def test_plain_text_is_identical_and_hits(chat: LocalChatModel, plain: LocalChatModel) -> None:
    messages = _messages(SYSTEM, "Name three colours.")
    content, *_ = _check_same(chat, plain, lambda m: m.invoke(messages))
    assert isinstance(content, str) and content.strip()


def test_streaming_is_identical_and_hits(chat: LocalChatModel, plain: LocalChatModel) -> None:
    messages = _messages(SYSTEM + " Streaming.", "Name a fruit.")

    def run(model: LocalChatModel) -> str:
        chunks = list(model.stream(messages, max_new_tokens=12))
        assert len(chunks) > 2
        return "".join(str(c.content) for c in chunks)

    assert _check_same(chat, plain, run).strip()


def test_tool_call_under_grammar_is_identical(chat: LocalChatModel, plain: LocalChatModel) -> None:
    messages = _messages(SYSTEM, "What is 17 * 23?")
    _, calls, _, _ = _check_same(
        chat,
        plain,
        lambda m: m.bind_tools([calculator, read_file], tool_choice="any").invoke(
            messages, max_new_tokens=40
        ),
    )
    assert calls and calls[0][0] in {"calculator", "read_file"}


async def test_async_tool_stream_is_identical(chat: LocalChatModel, plain: LocalChatModel) -> None:
    messages = _messages(SYSTEM + " Async.", "Open notes.txt.")
    bound = {
        m.prefix_cache: m.bind_tools([calculator, read_file], tool_choice="read_file")
        for m in (chat, plain)
    }
    [expected] = [c async for c in bound[False].astream(messages, max_new_tokens=32)]
    before = _stats(chat)
    for _ in range(2):
        [chunk] = [c async for c in bound[True].astream(messages, max_new_tokens=32)]
        assert chunk.content == expected.content
        assert chunk.tool_calls[0]["args"] == expected.tool_calls[0]["args"]
    assert _delta(chat, before) == (1, 1, 0)


def test_structured_output_is_identical(chat: LocalChatModel, plain: LocalChatModel) -> None:
    messages = _messages("You plan tasks.", "Goal: bake bread")

    def run(model: LocalChatModel) -> Any:
        return (
            model.model_copy(update={"max_new_tokens": 40})
            .with_structured_output(Plan)
            .invoke(messages)
        )

    plan = _check_same(chat, plain, run)
    assert isinstance(plan, Plan) and plan.steps


def test_changed_system_prompt_or_tools_miss(chat: LocalChatModel) -> None:
    question = "What is 2+2?"
    before = _stats(chat)
    chat.invoke(_messages("You are terse.", question), max_new_tokens=1)
    chat.invoke(_messages("You are terse.", "And 3+3?"), max_new_tokens=1)
    assert _delta(chat, before) == (1, 1, 0)
    before = _stats(chat)
    chat.invoke(_messages("You are verbose.", question), max_new_tokens=1)
    assert _delta(chat, before) == (0, 1, 0)
    # The tool list is part of the system turn: another tool set is another prefix.
    before = _stats(chat)
    chat.bind_tools([calculator], tool_choice="any").invoke(
        _messages("You are terse.", question), max_new_tokens=1
    )
    chat.bind_tools([read_file], tool_choice="any").invoke(
        _messages("You are terse.", question), max_new_tokens=1
    )
    assert _delta(chat, before) == (0, 2, 0)


def test_switched_off_never_touches_the_cache(plain: LocalChatModel) -> None:
    from_spec = LocalChatModel.from_spec(
        ModelSpec(name="smollm2", prefix_cache=False, threads=1, cache=CacheSpec(enabled=False))
    )
    assert from_spec.prefix_cache is False
    before = _stats(plain)
    plain.invoke(_messages("You are silent.", "Hi"), max_new_tokens=1)
    assert _delta(plain, before) == (0, 0, 0)


def test_prefix_that_does_not_tokenize_as_a_prefix_falls_back(
    chat: LocalChatModel, plain: LocalChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = _messages("You are a knowledgeable assistant.", "Name a planet.")
    expected = _comparable(plain.invoke(messages, max_new_tokens=8))
    original = prefix_cache_module.prompt_prefix

    def mid_word(prompt: str) -> str | None:
        # Cut inside "knowledgeable": the full prompt encodes that word as other tokens.
        prefix = original(prompt)
        assert prefix is not None and "knowledgeable" in prefix
        return prompt[: prompt.index("knowledgeable") + 5]

    tokenizer = chat.tokenizer
    prompt = chat._render(to_chat_turns(messages), "")
    cut = tokenizer(mid_word(prompt))["input_ids"]
    assert cut != tokenizer(prompt)["input_ids"][: len(cut)]
    monkeypatch.setattr(prefix_cache_module, "prompt_prefix", mid_word)
    before = _stats(chat)
    assert _comparable(chat.invoke(messages, max_new_tokens=8)) == expected
    assert _delta(chat, before) == (0, 0, 1)


def test_lru_bound_evicts_the_least_recently_used(chat: LocalChatModel) -> None:
    cache = PrefixCache(chat.hf_model, max_entries=2)
    prompts = [
        chat._render([{"role": "system", "content": s}, {"role": "user", "content": "Hi"}], "")
        for s in ("One.", "Two.", "Three.")
    ]
    for prompt in (prompts[0], prompts[1], prompts[0], prompts[2]):
        assert cache.lookup(chat.tokenizer, prompt) is not None
    assert (cache.stats.hits, cache.stats.misses, cache.stats.evictions) == (1, 3, 1)
    assert len(cache) == 2
    cache.lookup(chat.tokenizer, prompts[0])  # kept: it was used after "Two."
    assert cache.stats.hits == 2
    cache.lookup(chat.tokenizer, prompts[1])  # evicted: encoded again
    assert cache.stats.misses == 4


def test_a_prompt_over_the_context_window_is_fitted_not_crashed(chat, caplog) -> None:
    small = chat.model_copy(update={"context_tokens": 400, "prefix_cache": False})
    huge = "The quick brown fox jumps over the lazy dog. " * 2000  # ~20,000 tokens
    caplog.set_level("WARNING")
    reply = small.invoke(
        [SystemMessage("Answer briefly."), HumanMessage(huge), HumanMessage("Say hi.")],
        max_new_tokens=8,
    )
    assert isinstance(reply.content, str)
    assert reply.usage_metadata["input_tokens"] <= 400 - 8
    assert "context budget of 392 tokens" in caplog.text
