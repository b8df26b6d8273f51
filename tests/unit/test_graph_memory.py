"""GraphMemory on a real SQLite file, without embeddings: supersession, provenance, TTL, budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.types import MemoryCorruptError, RunRecord, Turn, approx_tokens

JAN_2023 = datetime(2023, 1, 10, tzinfo=UTC)
JAN_2024 = datetime(2024, 1, 10, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 6, 1, tzinfo=UTC))


@pytest.fixture
def memory(tmp_path: Path, clock: Clock) -> GraphMemory:
    graph = GraphMemory(tmp_path / "memory.sqlite", clock=clock)
    yield graph
    graph.close()


def say(memory: GraphMemory, session: str, at: datetime, *lines: tuple[str, str]) -> list[str]:
    turns = [Turn(text, speaker=speaker) for speaker, text in lines]
    return memory.add_episode(turns, session_id=session, at=at)


def test_a_newer_contradicting_fact_invalidates_the_old_one_without_deleting_it(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."))
    say(memory, "s2", JAN_2024, ("Ada", "I moved to Paris!"))

    (current,) = [f for f in memory.facts(subject="Ada") if f.predicate == "lives_in"]
    assert current.object == "Paris"
    history = [f for f in memory.facts(subject="Ada", include_invalid=True)]
    (old,) = [f for f in history if f.object == "Berlin"]
    assert old.invalid_at == current.valid_at == JAN_2024
    assert old.superseded_by == current.id
    assert not old.holds_at(JAN_2024) and old.holds_at(JAN_2023 + timedelta(days=1))


def test_search_returns_facts_as_they_stood_at_the_time_asked(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."))
    say(memory, "s2", JAN_2024, ("Ada", "I moved to Paris!"))

    now = memory.search("Where does Ada live?", budget_tokens=200)
    then = memory.search(
        "Where does Ada live?", budget_tokens=200, at=datetime(2023, 6, 1, tzinfo=UTC)
    )

    assert [f.object for f in now.facts] == ["Paris"]
    assert [f.object for f in then.facts] == ["Berlin"]
    assert {t.session_id for t in then.turns} == {"s1"}  # nothing said after the date


def test_a_fact_learned_late_is_stored_as_history(memory):
    say(memory, "new", JAN_2024, ("Ada", "I live in Paris."))
    say(memory, "old", JAN_2023, ("Ada", "I live in Berlin."))

    valid = memory.facts(subject="Ada")
    assert [f.object for f in valid] == ["Paris"]
    (berlin,) = [
        f for f in memory.facts(subject="Ada", include_invalid=True) if f.object == "Berlin"
    ]
    assert berlin.invalid_at == JAN_2024 and berlin.superseded_by == valid[0].id


def test_a_negation_closes_the_fact_it_denies(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I work at Acme Corp."))
    say(memory, "s2", JAN_2024, ("Ada", "I no longer work at Acme Corp."))

    assert memory.facts(subject="Ada") == []
    (closed,) = [
        f for f in memory.facts(subject="Ada", include_invalid=True) if f.superseded_by is not None
    ]
    assert closed.object == "Acme Corp" and closed.invalid_at == JAN_2024


def test_facts_cite_the_turns_they_came_from(memory):
    first = say(memory, "s1", JAN_2023, ("Bob", "Hi!"), ("Ada", "I live in Berlin."))
    again = say(memory, "s2", JAN_2024, ("Ada", "As you know, I live in Berlin."))

    (fact,) = memory.facts(subject="Ada")
    assert fact.sources == (first[1], again[0])  # heard twice, stored once, both cited
    found = memory.search("Berlin", budget_tokens=200)
    assert first[1] in {t.id for t in found.turns}


def test_aliases_link_a_first_name_to_the_full_name(memory):
    say(memory, "s1", JAN_2023, ("Ada Lovelace", "I live in London."))

    assert [f.object for f in memory.facts(subject="Ada")] == ["London"]
    assert [f.object for f in memory.facts(subject="ada lovelace")] == ["London"]


def test_search_fits_the_budget_and_counts_what_it_renders(memory):
    for day in range(30):
        say(
            memory,
            f"s{day}",
            JAN_2023 + timedelta(days=day),
            ("Ada", f"On day {day} I practised the violin for {day} hours and loved it."),
            ("Bob", f"Day {day}: I cooked pasta with tomatoes and basil for dinner."),
        )
    for budget in (0, 10, 64, 256, 1024):
        context = memory.search("How long did Ada practise the violin?", budget_tokens=budget)
        assert context.tokens <= budget
        assert context.tokens == approx_tokens(context.render())
    assert memory.search("violin", budget_tokens=0).turns == ()
    big = memory.search("violin practice", budget_tokens=256)
    assert big.turns and all(t.speaker == "Ada" for t in big.turns[:5])


def test_neighbouring_turns_come_along_with_a_hit(memory):
    ids = say(
        memory,
        "s1",
        JAN_2023,
        ("Bob", "What did you do at the weekend?"),
        ("Ada", "Went hiking up a mountain."),
        ("Bob", "Unrelated: the printer is broken again."),
    )
    context = memory.search("What did Ada do at the weekend?", budget_tokens=40)
    assert ids[1] in {t.id for t in context.turns}  # the answer, found through its question


def test_query_text_cannot_inject_fts_syntax(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."))
    for query in ['"unbalanced', "a AND OR NOT", "NEAR(berlin", "*", "berlin)", ""]:
        memory.search(query, budget_tokens=50)  # must not raise


def test_expired_turns_are_hidden_at_once_and_swept_with_their_facts(tmp_path, clock):
    memory = GraphMemory(tmp_path / "m.sqlite", clock=clock, turn_ttl_s=3600)
    say(memory, "chat", JAN_2023, ("Ada", "I live in Berlin."))
    kept = memory.add_episode(
        [Turn("The launch code word is pelican.", speaker="doc")], session_id="d", source="document"
    )
    assert memory.search("Berlin", budget_tokens=100).turns

    clock.now += timedelta(hours=2)
    assert not memory.search("Berlin", budget_tokens=100).turns
    assert memory.facts(subject="Ada") == []
    assert memory.sweep() == 2  # the turn and the fact learned only from it
    assert memory.stats()["turns"] == 1
    assert [t.id for t in memory.search("pelican", budget_tokens=100).turns] == kept
    memory.close()


def test_profile_entries_expire_and_an_empty_value_removes_one(memory, clock):
    memory.set_profile("name", "Ada")
    memory.set_profile("mood", "busy", ttl_s=60)
    memory.set_profile("tz", "Europe/Berlin", user_id="other")
    assert memory.get_profile() == {"mood": "busy", "name": "Ada"}

    clock.now += timedelta(minutes=2)
    assert memory.get_profile() == {"name": "Ada"}
    memory.set_profile("name", "")
    assert memory.get_profile() == {}
    assert memory.get_profile("other") == {"tz": "Europe/Berlin"}
    assert memory.sweep() == 1


def test_forget_a_session_keeps_facts_other_sessions_support(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."), ("Ada", "I work at Acme Corp."))
    say(memory, "s2", JAN_2024, ("Ada", "Still, I live in Berlin."))

    removed = memory.forget(session_id="s1")

    assert removed == 3  # two turns and the works_at fact
    assert [f.predicate for f in memory.facts(subject="Ada")] == ["lives_in"]
    assert memory.facts(subject="Ada")[0].sources == ("s2#0",)
    assert not memory.search("Acme", budget_tokens=100).turns


def test_forget_an_entity_or_a_fact(memory):
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."), ("Bob", "I work at Acme Corp."))
    (fact,) = memory.facts(subject="Bob")
    assert memory.forget(fact_id=fact.id) == 1
    assert memory.facts(subject="Bob") == []
    assert memory.forget(entity="Ada") >= 2
    assert memory.facts(subject="Ada") == []
    assert memory.forget(entity="Nobody") == 0
    with pytest.raises(ValueError):
        memory.forget()


def test_adding_the_same_turns_twice_stores_them_once(memory):
    turns = [Turn("I live in Berlin.", speaker="Ada", id="t1")]
    memory.add_episode(turns, session_id="s1", at=JAN_2023)
    memory.add_episode(turns, session_id="s1", at=JAN_2023)
    assert memory.stats()["turns"] == 1
    assert len(memory.facts(include_invalid=True)) == 1


def test_similar_runs_come_back_most_similar_first(memory):
    memory.record_run(RunRecord(goal="Compute 12*(3+4)", status="done", answer="84"))
    memory.record_run(
        RunRecord(
            goal="Summarise notes.txt into summary.md",
            status="failed",
            lessons=("read_file needs a path inside the workspace",),
        )
    )
    (best, *_) = memory.similar_runs("Summarise report.txt")
    assert best.goal == "Summarise notes.txt into summary.md"
    assert best.lessons == ("read_file needs a path inside the workspace",)
    assert memory.similar_runs("") == []


def test_a_file_that_is_not_a_database_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "memory.sqlite"
    garbage = b"this is not sqlite" * 100
    path.write_bytes(garbage)

    with pytest.raises(MemoryCorruptError, match=r"damaged.*left untouched"):
        GraphMemory(path)
    assert path.read_bytes() == garbage


def test_a_database_damaged_after_opening_is_reported_on_use(tmp_path):
    path = tmp_path / "memory.sqlite"
    memory = GraphMemory(path)
    say(memory, "s1", JAN_2023, ("Ada", "I live in Berlin."))
    memory.close()
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # keep the header page, smash every table
    path.write_bytes(bytes(data))

    with pytest.raises(MemoryCorruptError, match=str(path)):
        reopened = GraphMemory(path)
        reopened.search("Berlin", budget_tokens=100)
        reopened.facts(subject="Ada")


def test_a_newer_schema_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "memory.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(MemoryCorruptError, match="newer"):
        GraphMemory(path)
