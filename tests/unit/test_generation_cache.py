"""GenerationCache without a real embedding model: keys, tiers, policy, bounds and recovery."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from goalgraph.llm.cache import CacheRequest, GenerationCache, literal_tokens, semantic_task
from goalgraph.spec import CacheSpec

DIM = 32
# Words a paraphrase may swap or drop; everything else counts.
SYNONYMS = {"compute": "what", "calculate": "what", "please": "", "is": "", "the": ""}


def fake_embed(text: str) -> np.ndarray:
    """Embed the words of ``text`` (digits and punctuation dropped) as a hashed bag of words."""
    vector = np.zeros(DIM, dtype="float32")
    for word in re.sub(r"[^a-z ]", " ", text.lower()).split():
        word = SYNONYMS.get(word, word)
        if word:
            vector[sum(map(ord, word)) % DIM] += 1.0
    vector[DIM - 1] += 0.01
    return vector / np.linalg.norm(vector)


SCOPE: dict[str, Any] = {
    "model": ["smollm2", "/models/smollm2"],
    "dtype": "torch.float32",
    "decoding": [0.0, 256, []],
    "thought": [False, 200, 48],
    "mode": "json",
    "schema": {"type": "object", "properties": {"steps": {"type": "array"}}},
}


def request(task: str | None, *, prompt: str | None = None, **scope: Any) -> CacheRequest:
    return CacheRequest(
        scope={**SCOPE, **scope},
        system="You plan.",
        prompt=prompt if prompt is not None else f"<system>You plan.</system><user>{task}</user>",
        task=task,
    )


def make_cache(path: Path, **spec: Any) -> GenerationCache:
    return GenerationCache(CacheSpec(**spec), path=path, embed=fake_embed, dimension=DIM)


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    cache = make_cache(tmp_path)
    yield cache
    cache.close()


def test_exact_hit_survives_the_process(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, semantic=False)
    first = request("What is 6*7?")
    assert cache.lookup(first) is None
    cache.store(first, '{"steps": ["calculator"]}', output_tokens=9)
    hit = cache.lookup(first)
    assert hit is not None and hit.tier == "exact"
    assert (hit.text, hit.output_tokens) == ('{"steps": ["calculator"]}', 9)
    cache.close()
    again = make_cache(tmp_path, semantic=False)
    assert again.lookup(first) == hit
    assert again.stats.exact_hits == 1 and again.stats.misses == 0
    again.close()


def test_exact_hit_in_process_is_fast(cache: GenerationCache) -> None:
    first = request("What is 6*7?")
    cache.store(first, "42")
    start = time.perf_counter()
    for _ in range(100):
        assert cache.lookup(first) is not None
    assert (time.perf_counter() - start) / 100 < 0.002  # A sanity bound, not a benchmark.


@pytest.mark.parametrize(
    "change",
    [
        {"model": ["other-model", "/models/other"]},
        {"dtype": "torch.bfloat16"},
        {"decoding": [0.0, 64, []]},
        {"thought": [True, 200, 48]},
        {"schema": {"type": "object", "properties": {"answer": {"type": "string"}}}},
        {"mode": "tools", "schema": {"anyOf": [{"properties": {"name": {"const": "read_file"}}}]}},
    ],
    ids=["model", "dtype", "max_new_tokens", "thought", "schema", "tool_set"],
)
def test_another_model_decoding_or_schema_never_hits(
    cache: GenerationCache, change: dict[str, Any]
) -> None:
    cache.store(request("What is 12*(3+4)?"), "cached plan")
    assert cache.lookup(request("What is 12*(3+4)?", **change)) is None
    assert cache.lookup(request("Compute 12*(3+4) please", **change)) is None
    assert cache.stats.exact_hits == cache.stats.semantic_hits == 0


def test_another_system_prompt_never_hits_semantically(cache: GenerationCache) -> None:
    cache.store(request("What is 12*(3+4)?"), "cached plan")
    other = CacheRequest(
        scope=SCOPE, system="Other tools.", prompt="x", task="Compute 12*(3+4) please"
    )
    assert cache.lookup(other) is None


def test_semantic_hit_for_a_paraphrase_with_the_same_numbers(cache: GenerationCache) -> None:
    cache.store(request("What is 12*(3+4)?"), "cached plan", output_tokens=20)
    hit = cache.lookup(request("Compute 12*(3+4) please"))
    assert hit is not None and hit.tier == "semantic"
    assert (hit.text, hit.output_tokens) == ("cached plan", 20)
    assert cache.stats.semantic_hits == 1


def test_semantic_tier_persists(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cache.store(request("What is 12*(3+4)?"), "cached plan")
    cache.close()
    again = make_cache(tmp_path)
    hit = again.lookup(request("Compute 12*(3+4) please"))
    assert hit is not None and hit.tier == "semantic"
    again.close()


@pytest.mark.parametrize(
    "goal",
    [
        "What is 12*(3+5)?",
        "What is 12*(3-4)?",
        "What is 13*(3+4)?",
    ],
)
def test_no_semantic_hit_when_the_numbers_differ(cache: GenerationCache, goal: str) -> None:
    cache.store(request("What is 12*(3+4)?"), "cached plan")
    assert fake_embed(goal) @ fake_embed("What is 12*(3+4)?") > 0.99  # Only literals differ.
    assert cache.lookup(request(goal)) is None


def test_no_semantic_hit_when_files_or_quotes_differ(cache: GenerationCache) -> None:
    cache.store(request("Summarise notes.txt"), "plan for notes")
    assert cache.lookup(request("Summarise todo.txt")) is None
    cache.store(request('Write "hello" to out.md'), "plan for hello")
    assert cache.lookup(request('Write "bye" to out.md')) is None
    assert cache.lookup(request('Please write "hello" to out.md')) is not None


def test_literal_tokens() -> None:
    assert literal_tokens("What is 12*(3+4)?") == ["12*(3+4)"]
    assert literal_tokens("Compute 12 * (3 + 4) please") == ["12*(3+4)"]
    assert literal_tokens("Read notes.txt") == ["f:notes.txt"]
    assert literal_tokens('Say "hi" then fetch https://a.example/x.html') == [
        "https://a.example/x.html",
        "q:hi",
    ]
    assert literal_tokens("Write a poem about cats.") == []


def test_tool_call_turns_and_conversations_are_never_semantic(cache: GenerationCache) -> None:
    plan = [SystemMessage("You plan."), HumanMessage("Goal: What is 12*(3+4)?")]
    assert semantic_task(plan, "json") == "Goal: What is 12*(3+4)?"
    assert semantic_task(plan, "tools") is None
    assert semantic_task(plan, "text") is None
    later = [
        *plan,
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"x": "1"}, "id": "c1"}]),
        ToolMessage("84", tool_call_id="c1"),
        HumanMessage("Next step."),
    ]
    assert semantic_task(later, "json") is None
    # Without a task only the exact tier answers: the same prompt hits, a paraphrase does not.
    turn = request(None, prompt="<user>What is 12*(3+4)?</user>", mode="tools")
    cache.store(turn, '{"name": "calculator"}')
    assert cache.lookup(turn) is not None
    assert cache.lookup(request(None, prompt="<user>Compute 12*(3+4)</user>", mode="tools")) is None
    assert cache.stats.semantic_hits == 0


def test_ttl_expiry_is_a_miss_and_removes_the_entry(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, ttl_s=0.2)
    first = request("What is 12*(3+4)?")
    cache.store(first, "old plan")
    assert cache.lookup(request("Compute 12*(3+4) please")) is not None
    time.sleep(0.3)
    assert cache.lookup(request("Compute 12*(3+4) please")) is None
    assert cache.lookup(first) is None
    assert cache.stats.expired >= 2
    assert cache._db is not None
    assert cache._db.execute("SELECT count(*) FROM entries").fetchone() == (0,)
    cache.close()


def test_max_entries_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_entries=2, semantic=False)
    a, b, c = (request(None, prompt=p) for p in "abc")
    cache.store(a, "A")
    time.sleep(0.01)
    cache.store(b, "B")
    time.sleep(0.01)
    cache.store(c, "C")
    assert cache.lookup(a) is None
    assert cache.lookup(b) is not None and cache.lookup(c) is not None
    cache.close()
    again = make_cache(tmp_path, max_entries=2, semantic=False)
    assert again.lookup(a) is None and again.lookup(c) is not None
    again.close()


def test_corrupt_sqlite_file_is_rebuilt_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "exact.sqlite3").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="goalgraph.llm.cache"):
        cache = make_cache(tmp_path)
    assert "rebuilding" in caplog.text
    first = request("What is 6*7?")
    cache.store(first, "42")
    assert cache.lookup(first) is not None
    cache.close()


def test_corrupt_semantic_files_are_rebuilt_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "semantic"
    folder.mkdir()
    (folder / "faiss.index").write_bytes(b"garbage" * 100)
    (folder / "gptcache.sqlite3").write_bytes(b"garbage" * 100)
    cache = make_cache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="goalgraph.llm.cache"):
        cache.store(request("What is 12*(3+4)?"), "plan")
    assert "rebuilding" in caplog.text
    hit = cache.lookup(request("Compute 12*(3+4) please"))
    assert hit is not None and hit.tier == "semantic"
    cache.close()


def test_opt_out(tmp_path: Path) -> None:
    assert GenerationCache.from_spec(CacheSpec(enabled=False), path=tmp_path) is None
    cache = make_cache(tmp_path, semantic=False)
    cache.store(request("What is 12*(3+4)?"), "plan")
    assert cache.lookup(request("Compute 12*(3+4) please")) is None
    assert not (tmp_path / "semantic").exists()
    cache.close()


def test_semantic_tier_does_not_embed_until_used(tmp_path: Path) -> None:
    calls: list[str] = []

    def embed(text: str) -> np.ndarray:
        calls.append(text)
        return fake_embed(text)

    cache = GenerationCache(CacheSpec(), path=tmp_path, embed=embed, dimension=DIM)
    turn = request(None, prompt="<user>hi</user>", mode="tools")
    cache.store(turn, "x")
    cache.lookup(turn)
    assert calls == [] and cache._semantic is None
    cache.store(request("What is 6*7?"), "plan")
    assert calls == ["What is 6*7?"]
    cache.close()
