"""``ZepMemory`` end to end, through zep-python, against the Zep test double as a real server.

``tests/servers/zep_server.py`` runs as a subprocess on a free port of 127.0.0.1: once with an API
key (most tests), once searching facts only, as Zep Community Edition 1.x does. Every test works
as its own Zep user, so tests sharing a server do not see each other's sessions.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port, stop_process

from goalgraph.memory.backend import MemoryBackend
from goalgraph.memory.factory import open_memory
from goalgraph.memory.types import (
    MemoryBackendError,
    MemoryContext,
    RunRecord,
    Turn,
    approx_tokens,
    utcnow,
)
from goalgraph.memory.zep import ZepMemory
from goalgraph.spec import MemorySpec, ZepSpec

SERVER = Path(__file__).resolve().parents[1] / "servers" / "zep_server.py"
API_KEY = "test-secret"
STARTUP_S = 30.0


def _start(tmp_path_factory: pytest.TempPathFactory, *flags: str) -> Iterator[str]:
    """Run the Zep test double with ``flags``; yield its API root; stop it afterwards."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("zep") / "server.log"
    command = [sys.executable, str(SERVER), "--port", str(port), *flags]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/api/v2"
    try:
        _wait_until_up(base_url, process, log_path)
        yield base_url
    finally:
        stop_process(process)


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Zep test server exited early:\n{log_path.read_text()}")
        try:
            urllib.request.urlopen(f"{base_url}/users/probe", timeout=1)
        except urllib.error.HTTPError:
            return  # 401 or 404: it answers.
        except OSError:
            time.sleep(0.1)
            continue
        return
    pytest.fail(f"the Zep test server did not start:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test double requiring ``API_KEY``; yields its API root."""
    yield from _start(tmp_path_factory, "--api-key", API_KEY)


@pytest.fixture(scope="module")
def facts_only_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test double searching facts only, like Zep CE 1.x; yields its API root."""
    yield from _start(tmp_path_factory, "--facts-only-search")


@pytest.fixture
def user_id() -> str:
    """A Zep user of this test alone."""
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def connect(server: str, user_id: str) -> Iterator[Callable[..., ZepMemory]]:
    """Open ``ZepMemory`` clients on ``server`` as ``user_id``; close them afterwards."""
    opened: list[ZepMemory] = []

    def open_(**overrides: Any) -> ZepMemory:
        options: dict[str, Any] = {
            "base_url": server,
            "api_key": API_KEY,
            "user_id": user_id,
            "timeout_s": 10.0,
            **overrides,
        }
        memory = ZepMemory(**options)
        opened.append(memory)
        return memory

    yield open_
    for memory in opened:
        memory.close()


@pytest.fixture
def memory(connect: Callable[..., ZepMemory]) -> ZepMemory:
    """A ``ZepMemory`` on the keyed server, as this test's user."""
    return connect()


CHAT = [
    Turn("Ada moved to Lisbon last spring.", speaker="user"),
    Turn("How do you like Lisbon so far?", speaker="assistant"),
    Turn("The weather report says rain tomorrow.", speaker="tool"),
]


def test_search_finds_the_turn_and_the_fact_within_the_budget(
    user_id: str, connect: Callable[..., ZepMemory]
) -> None:
    counted: list[str] = []

    def count(text: str) -> int:
        counted.append(text)
        return approx_tokens(text)

    memory = connect(count_tokens=count)
    memory.add_episode(CHAT, session_id=f"{user_id}-chat")

    context = memory.search("Where did Ada move?", budget_tokens=200)

    assert [fact.text for fact in context.facts] == ["Ada moved to Lisbon last spring."]
    assert [turn.text for turn in context.turns] == ["Ada moved to Lisbon last spring."]
    rendered = context.render()
    assert counted[-1] == rendered
    assert context.tokens == approx_tokens(rendered) <= 200
    assert "Ada moved to Lisbon" in rendered


def test_search_packs_to_small_budgets(memory: ZepMemory, user_id: str) -> None:
    turns = [Turn(f"Ada visited museum number {n} in Lisbon.") for n in range(12)]
    memory.add_episode(turns, session_id=f"{user_id}-museums")

    roomy = memory.search("Ada museum Lisbon", budget_tokens=2000)
    tight = memory.search("Ada museum Lisbon", budget_tokens=30)
    empty = memory.search("Ada museum Lisbon", budget_tokens=0)

    assert len(roomy.facts) == 12 and len(roomy.turns) == 12
    assert 0 < len(tight.facts) < 12 and not tight.turns  # Facts come first.
    assert tight.tokens == approx_tokens(tight.render()) <= 30
    assert roomy.tokens == approx_tokens(roomy.render()) <= 2000
    assert not empty and empty.tokens == 0


def test_turn_ids_positions_and_times_round_trip(memory: ZepMemory, user_id: str) -> None:
    session = f"{user_id}: trip planning"  # Spaces and a colon travel in the URL path.
    said = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    first = memory.add_episode(
        [Turn("Ada booked a train to Porto.", id="turn-a", at=said), Turn("Ada packs a bag.")],
        session_id=session,
        at=said + timedelta(hours=1),
    )
    second = memory.add_episode([Turn("Ada arrived in Porto.")], session_id=session)

    assert first[0] == "turn-a" and len(set(first + second)) == 3
    found = {turn.id: turn for turn in memory.search("Ada Porto bag", budget_tokens=500).turns}
    assert set(found) == set(first + second)
    assert found["turn-a"].at == said and found["turn-a"].session_id == session
    assert found[first[1]].at == said + timedelta(hours=1)
    assert [found[i].seq for i in (*first, *second)] == [0, 1, 2]
    assert found["turn-a"].speaker == "user" and found["turn-a"].score > 0


def test_search_can_be_limited_to_one_session(memory: ZepMemory, user_id: str) -> None:
    memory.add_episode([Turn("Ada likes green tea.")], session_id=f"{user_id}-one")
    memory.add_episode([Turn("Ada likes black coffee.")], session_id=f"{user_id}-two")

    context = memory.search("what does Ada like", session_id=f"{user_id}-two")

    assert [turn.text for turn in context.turns] == ["Ada likes black coffee."]
    assert [fact.text for fact in context.facts] == ["Ada likes black coffee."]


def test_facts_filter_by_subject_newest_first(memory: ZepMemory, user_id: str) -> None:
    memory.add_episode([Turn("Ada works at the observatory.")], session_id=f"{user_id}-a")
    memory.add_episode([Turn("Bob plays the cello.")], session_id=f"{user_id}-b")
    memory.add_episode([Turn("Ada adopted a cat named Pixel.")], session_id=f"{user_id}-c")

    about_ada = memory.facts(subject="ada")

    assert [fact.text for fact in about_ada] == [
        "Ada adopted a cat named Pixel.",
        "Ada works at the observatory.",
    ]
    assert len(memory.facts()) == 3 and len(memory.facts(limit=1)) == 1
    assert memory.facts(subject="Ad") == []  # Whole words only.


def test_profile_set_get_overwrite_and_remove(memory: ZepMemory) -> None:
    assert memory.get_profile() == {}
    memory.set_profile("name", "Ada")
    memory.set_profile("city", "Lisbon")
    memory.set_profile("city", "Porto")
    memory.set_profile("name", "Grace", user_id="grace")

    assert memory.get_profile() == {"name": "Ada", "city": "Porto"}
    assert memory.get_profile("grace") == {"name": "Grace"}

    memory.set_profile("city", "")

    assert memory.get_profile() == {"name": "Ada"}


def test_sweep_forgets_expired_turns_and_profile_entries(memory: ZepMemory, user_id: str) -> None:
    memory.add_episode([Turn("Ada parks on level 3.")], session_id=f"{user_id}-tmp", ttl_s=60)
    memory.add_episode([Turn("Ada was born in London.")], session_id=f"{user_id}-keep")
    memory.set_profile("parking", "level 3", ttl_s=60)
    memory.set_profile("name", "Ada")

    assert memory.sweep() == 0
    assert "parking" in memory.get_profile()
    assert [t.text for t in memory.search("parks level").turns] == ["Ada parks on level 3."]

    # One turn, its fact and one profile entry go; nothing else.
    assert memory.sweep(now=utcnow() + timedelta(minutes=2)) == 3

    assert memory.get_profile() == {"name": "Ada"}
    assert memory.search("parks level") == MemoryContext()
    assert memory.forget(session_id=f"{user_id}-tmp") == 0  # Already gone.
    assert [t.text for t in memory.search("Ada born London").turns] == ["Ada was born in London."]


def test_expired_turns_are_hidden_before_the_sweep(memory: ZepMemory, user_id: str) -> None:
    session = f"{user_id}-mixed"
    memory.add_episode([Turn("The door code is 4512.")], session_id=session, ttl_s=0.05)
    memory.add_episode([Turn("The door is blue.")], session_id=session)
    time.sleep(0.1)

    assert [t.text for t in memory.search("door code blue").turns] == ["The door is blue."]
    # A session with a turn kept for good stays; Zep cannot delete single messages.
    assert memory.sweep(now=utcnow() + timedelta(days=1)) == 0


def test_forget_a_session_a_fact_and_an_entity(memory: ZepMemory, user_id: str) -> None:
    memory.add_episode(
        [Turn("Ada lives in Lisbon."), Turn("Noted.", speaker="assistant")],
        session_id=f"{user_id}-home",
    )
    memory.add_episode([Turn("Bob lives in Oslo.")], session_id=f"{user_id}-bob")
    memory.add_episode([Turn("Ada speaks Portuguese.")], session_id=f"{user_id}-lang")

    assert memory.forget(session_id=f"{user_id}-home") == 3  # Two turns and one fact.
    assert memory.search("Lisbon noted") == MemoryContext()

    (bob,) = memory.facts(subject="Bob")
    assert memory.forget(fact_id=bob.id) == 1
    assert memory.forget(fact_id=bob.id) == 0
    assert memory.facts(subject="Bob") == []

    assert memory.forget(entity="Ada") == 1
    assert memory.facts() == []
    with pytest.raises(ValueError, match="fact_id"):
        memory.forget()


def test_similar_runs_returns_the_closest_run_first(memory: ZepMemory) -> None:
    assert memory.similar_runs("anything") == []
    finished = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    csv_run = RunRecord(
        goal="sum the amounts column of sales.csv",
        status="done",
        answer="4210",
        plan=("read_file sales.csv", "python sum"),
        lessons=("Parse numbers with python, not by eye.",),
        thread_id="thread-csv",
        finished_at=finished,
    )
    memory.record_run(RunRecord(goal="write a haiku about autumn", status="done"))
    memory.record_run(csv_run)
    memory.record_run(RunRecord(goal="count the rows of users.csv", status="failed"))

    runs = memory.similar_runs("sum the amounts in sales.csv", limit=2)

    assert len(runs) == 2
    assert runs[0].goal == csv_run.goal and runs[0].score > runs[1].score > 0
    assert runs[0] == replace(csv_run, score=runs[0].score)
    # Runs are not conversation: they stay out of search.
    assert memory.search("sum the amounts of sales.csv").turns == ()


def test_facts_only_server_still_finds_runs_and_facts(facts_only_server: str, user_id: str) -> None:
    memory = ZepMemory(base_url=facts_only_server, user_id=user_id, timeout_s=10)
    try:
        memory.add_episode([Turn("Ada collects stamps.")], session_id=f"{user_id}-hobby")
        memory.record_run(RunRecord(goal="plot the stamp prices", status="done"))
        memory.record_run(RunRecord(goal="translate a letter", status="done"))

        context = memory.search("Ada stamps")
        runs = memory.similar_runs("plot the stamp prices again")
    finally:
        memory.close()

    assert [fact.text for fact in context.facts] == ["Ada collects stamps."]
    assert context.turns == ()  # Zep CE searches facts only.
    assert [run.goal for run in runs] == ["plot the stamp prices"]
    assert runs[0].score == pytest.approx(0.8)


def test_open_memory_builds_zep_from_the_spec(server: str, user_id: str) -> None:
    spec = MemorySpec.model_validate(  # The shape of the YAML configuration.
        {
            "backend": "zep",
            "zep": {"base_url": server, "api_key": API_KEY, "user_id": user_id},
            "turn_ttl_s": 60,
        }
    )
    memory = open_memory(spec)
    assert isinstance(memory, ZepMemory) and isinstance(memory, MemoryBackend)
    try:
        assert memory.user_id == user_id
        memory.add_episode([Turn("Ada drinks oat milk.")], session_id=f"{user_id}-spec")
        memory.add_episode([Turn("Ada: a note.")], session_id=f"{user_id}-doc", source="document")
        assert len(memory.facts()) == 2
        # memory.turn_ttl_s applies to conversation turns only.
        assert memory.sweep(now=utcnow() + timedelta(minutes=2)) == 2
        assert [fact.text for fact in memory.facts()] == ["Ada: a note."]
    finally:
        memory.close()


def test_wrong_api_key_is_an_authentication_error(server: str, user_id: str) -> None:
    memory = ZepMemory(base_url=server, api_key="wrong", user_id=user_id)
    try:
        with pytest.raises(MemoryBackendError, match=r"authentication.*memory\.zep\.api_key"):
            memory.get_profile()
    finally:
        memory.close()
    spec = MemorySpec(backend="zep", zep=ZepSpec(base_url=server, user_id=user_id))
    with pytest.raises(MemoryBackendError, match=r"refused authentication \(HTTP 401\)"):
        open_memory(spec)


def test_dead_server_fails_fast_with_a_clear_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v2"
    spec = MemorySpec(backend="zep", zep=ZepSpec(base_url=base_url, timeout_s=30))
    started = time.monotonic()
    with pytest.raises(MemoryBackendError) as raised:
        open_memory(spec)
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith(f"Cannot reach the Zep server at {base_url}")
    assert "memory.zep.base_url" in message and "\n" not in message


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # Accepts connections (the kernel does) but never answers.
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v2"
        memory = ZepMemory(base_url=base_url, timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(MemoryBackendError, match=r"did not answer within 0.5 s"):
            memory.get_profile()
        memory.close()
    assert time.monotonic() - started < 5


def test_wrong_base_url_explains_the_api_root(server: str, user_id: str) -> None:
    memory = ZepMemory(base_url=server.removesuffix("/api/v2"), api_key=API_KEY, user_id=user_id)
    try:
        with pytest.raises(MemoryBackendError, match=r"HTTP 404 .*\.\.\./api/v2"):
            memory.set_profile("name", "Ada")
    finally:
        memory.close()


def test_another_users_session_is_left_alone(
    connect: Callable[..., ZepMemory], user_id: str
) -> None:
    mine = connect()
    theirs = connect(user_id=f"{user_id}-other")
    theirs.add_episode([Turn("Grace writes compilers.")], session_id=f"{user_id}-shared")

    with pytest.raises(MemoryBackendError, match="belongs to user"):
        mine.add_episode([Turn("Ada writes poems.")], session_id=f"{user_id}-shared")
    assert mine.forget(session_id=f"{user_id}-shared") == 0
    assert [fact.text for fact in theirs.facts()] == ["Grace writes compilers."]


def test_closed_memory_refuses_calls(memory: ZepMemory) -> None:
    memory.close()
    memory.close()  # Twice is fine.
    with pytest.raises(MemoryBackendError, match="closed"):
        memory.get_profile()
