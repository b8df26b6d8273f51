"""GenerationCache with real all-MiniLM-L6-v2 embeddings and the bundled model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from goalgraph.llm.cache import CacheRequest, GenerationCache, MiniLMEmbedder
from goalgraph.llm.chat import LocalChatModel
from goalgraph.llm.grammar import structured_output_schema
from goalgraph.spec import CacheSpec, ModelSpec

pytestmark = pytest.mark.model

# MiniLM scores "What is 12*(3+4)?" vs "Compute 12*(3+4) please" at about 0.86: below the
# spec's default 0.9, so these tests lower the threshold; the literal guard keeps it safe.
SIMILARITY = 0.8
SYSTEM = "You are a planner. Plan the goal in one or two short steps."


class Plan(BaseModel):
    """A short plan that reaches the goal."""

    steps: list[str] = Field(min_length=1, max_length=2, description="short imperative steps")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression like 12*(3+4)."""
    return expression


def _request(task: str) -> CacheRequest:
    return CacheRequest(scope={"model": "m"}, system=SYSTEM, prompt=f"Goal: {task}", task=task)


def _timed(cache: GenerationCache, request: CacheRequest) -> tuple[Any, float]:
    start = time.perf_counter()
    hit = cache.lookup(request)
    return hit, (time.perf_counter() - start) * 1000


def test_minilm_paraphrase_hits_and_other_numbers_miss(tmp_path: Path) -> None:
    cache = GenerationCache(CacheSpec(similarity=SIMILARITY), path=tmp_path)
    embedder = MiniLMEmbedder()
    cache.store(_request("What is 12*(3+4)?"), '{"steps": ["calculate 12*(3+4)"]}')
    hit, semantic_ms = _timed(cache, _request("Compute 12*(3+4) please"))
    assert hit is not None and hit.tier == "semantic"
    assert hit.text == '{"steps": ["calculate 12*(3+4)"]}'
    miss, miss_ms = _timed(cache, _request("What is 12*(3+5)?"))
    assert miss is None
    assert cache.lookup(_request("Write a poem about cats.")) is None
    hit, exact_ms = _timed(cache, _request("What is 12*(3+4)?"))
    assert hit is not None and hit.tier == "exact"
    assert exact_ms < 2.0  # A sanity bound, not a benchmark.
    print(f"\nexact {exact_ms:.3f} ms, semantic {semantic_ms:.1f} ms, miss {miss_ms:.1f} ms")
    assert embedder(" ").shape == (384,)
    cache.close()


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> LocalChatModel:
    folder = tmp_path_factory.mktemp("generation-cache")
    spec = ModelSpec(
        name="smollm2",
        max_new_tokens=40,
        threads=2,
        cache=CacheSpec(path=folder, similarity=SIMILARITY),
    )
    return LocalChatModel.from_spec(spec)


def _plan_messages(goal: str) -> list[BaseMessage]:
    return [SystemMessage(SYSTEM), HumanMessage(goal)]


def test_local_model_answers_plans_from_the_cache(chat: LocalChatModel) -> None:
    cache = chat.generation_cache
    assert cache is not None
    planner = chat.with_structured_output(Plan, include_raw=True)
    messages = _plan_messages("What is 12*(3+4)?")
    first = planner.invoke(messages)
    assert "cache" not in first["raw"].response_metadata
    second = planner.invoke(messages)
    assert second["raw"].response_metadata["cache"] == "exact"
    assert second["raw"].content == first["raw"].content
    assert second["parsed"] == first["parsed"]
    assert second["raw"].usage_metadata == first["raw"].usage_metadata
    paraphrase = planner.invoke(_plan_messages("Compute 12*(3+4) please"))
    assert paraphrase["raw"].response_metadata["cache"] == "semantic"
    assert paraphrase["raw"].content == first["raw"].content
    other = planner.invoke(_plan_messages("What is 12*(3+5)?"))
    assert "cache" not in other["raw"].response_metadata

    schema = structured_output_schema(Plan)
    call = chat._prepare(messages, None, {"response_format": schema})
    request = chat._cache_request(call, messages)
    assert request is not None and request.task == "What is 12*(3+4)?"
    start = time.perf_counter()
    assert cache.lookup(request) is not None
    assert (time.perf_counter() - start) * 1000 < 2.0  # A sanity bound, not a benchmark.
    # Sampling is never cached.
    sampled = chat.model_copy(update={"temperature": 0.7})
    assert sampled._cache_request(call, messages) is None


def test_tool_turns_reuse_only_the_same_prompt(chat: LocalChatModel) -> None:
    bound = chat.bind_tools([calculator], tool_choice="any")
    messages = _plan_messages("What is 17*23?")
    first = bound.invoke(messages)
    second = bound.invoke(messages)
    assert second.response_metadata["cache"] == "exact"
    assert [(c["name"], c["args"]) for c in second.tool_calls] == [
        (c["name"], c["args"]) for c in first.tool_calls
    ]
    assert second.tool_calls[0]["id"] != first.tool_calls[0]["id"]  # Fresh call ids.
    paraphrase = bound.invoke(_plan_messages("Compute 17*23 please"))
    assert "cache" not in paraphrase.response_metadata


def test_opt_out_leaves_no_cache() -> None:
    spec = ModelSpec(name="smollm2", cache=CacheSpec(enabled=False))
    assert GenerationCache.from_spec(spec.cache) is None
