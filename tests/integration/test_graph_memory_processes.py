"""GraphMemory across real processes (persistence, concurrent writers) and with real MiniLM."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from goalgraph.embeddings import MiniLMEmbedder
from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.types import Turn

WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from goalgraph.memory.graph import GraphMemory
    from goalgraph.memory.types import Turn

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    memory = GraphMemory(path)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(count):
        memory.add_episode(
            [Turn(f"I live in City{i}.", speaker=name), Turn(f"Noted, {name}.", speaker="bot")],
            session_id=f"{name}-{i}",
            at=start + timedelta(days=i),
        )
    memory.close()
    """
)


def run_writer(path: Path, name: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name, str(count)], stderr=subprocess.PIPE
    )


def test_what_one_process_writes_another_reads(tmp_path):
    path = tmp_path / "memory.sqlite"
    writer = run_writer(path, "Ada", 3)
    assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""

    with GraphMemory(path) as memory:
        (fact,) = memory.facts(subject="Ada")
        assert fact.object == "City2"  # the last move wins; the two before are history
        assert len(memory.facts(subject="Ada", include_invalid=True)) == 3
        assert fact.sources == ("Ada-2#0",)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "memory.sqlite"
    GraphMemory(path).close()  # create the schema once, as the agent does on start
    names = ["Ada", "Bob", "Cyd", "Dee"]
    writers = [run_writer(path, name, 40) for name in names]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""

    with GraphMemory(path) as memory:
        stats = memory.stats()
        assert stats["turns"] == len(names) * 40 * 2
        assert stats["sessions"] == len(names) * 40
        for name in names:
            (fact,) = memory.facts(subject=name)
            assert fact.object == "City39"
            assert len(memory.facts(subject=name, include_invalid=True)) == 40


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_embeddings_find_what_words_alone_miss(tmp_path, embedder):
    at = datetime(2024, 3, 1, tzinfo=UTC)
    turns = [
        Turn("We adopted a little beagle puppy last week!", speaker="Ada"),
        Turn("The quarterly report is due on Friday.", speaker="Bob"),
        Turn("My sister painted the kitchen yellow.", speaker="Ada"),
    ] + [Turn(f"Meeting notes number {i} about budgets.", speaker="Bob") for i in range(20)]
    lexical = GraphMemory(tmp_path / "lexical.sqlite")
    semantic = GraphMemory(tmp_path / "semantic.sqlite", embedder=embedder)
    for memory in (lexical, semantic):
        memory.add_episode(turns, session_id="chat", at=at)

    question = "Does she have a dog?"
    assert "beagle" not in lexical.search(question, budget_tokens=20).render()
    found = semantic.search(question, budget_tokens=20)
    assert "beagle" in found.render()

    # The vectors persist: a new process-level object answers without re-embedding turns.
    semantic.close()
    reopened = GraphMemory(tmp_path / "semantic.sqlite", embedder=embedder)
    assert "beagle" in reopened.search(question, budget_tokens=20).render()
    reopened.close()
    lexical.close()


def test_another_writers_deletions_reach_this_processs_vector_index(tmp_path, embedder):
    """SQLite reuses the rowid of a deleted last row; a stale index would mismatch vectors."""
    path = tmp_path / "memory.sqlite"
    at = datetime(2024, 3, 1, tzinfo=UTC)
    reader = GraphMemory(path, embedder=embedder)
    reader.add_episode(
        [Turn("Quarterly budget review notes.", speaker="Bob")], session_id="a", at=at
    )
    reader.add_episode([Turn("We adopted a beagle puppy!", speaker="Ada")], session_id="b", at=at)
    assert "beagle" in reader.search("Does she have a dog?", budget_tokens=12).render()

    writer = GraphMemory(path, embedder=embedder)
    writer.forget(session_id="b")
    writer.add_episode([Turn("The printer needs toner.", speaker="Cy")], session_id="c", at=at)
    writer.close()

    found = reader.search("Does she have a dog?", budget_tokens=12).render()
    assert "beagle" not in found
    assert "toner" in reader.search("office supplies for printing", budget_tokens=12).render()
    reader.close()
