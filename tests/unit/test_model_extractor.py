"""ModelExtractor with a scripted model: grounded facts kept, invented ones dropped, rules as
the fallback; and ``extractor: model`` wired from the spec."""

from __future__ import annotations

from datetime import UTC, datetime

from goalgraph.memory.extract import ModelExtractor, TurnText
from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.types import Turn
from goalgraph.spec import MemorySpec
from goalgraph.testing import ScriptedChatModel, garbage, tool_call

AT = datetime(2024, 5, 1, tzinfo=UTC)
TURN = TurnText("t1", "Ada", "I just moved to Berlin for a job at Zeiss.", AT)


def facts_call(*facts: dict) -> object:
    return tool_call("Facts", facts=[{"exclusive": False, "negated": False, **f} for f in facts])


def test_grounded_facts_are_kept_with_their_source():
    model = ScriptedChatModel(
        responses=[
            facts_call(
                {"subject": "I", "predicate": "lives in", "object": "Berlin", "exclusive": True},
                {"subject": "Ada", "predicate": "works at", "object": "Zeiss"},
            )
        ]
    )
    facts = ModelExtractor(model).extract([TURN])
    assert [(f.subject, f.predicate, f.object, f.exclusive) for f in facts] == [
        ("Ada", "lives_in", "Berlin", True),
        ("Ada", "works_at", "Zeiss", False),
    ]
    assert {f.source for f in facts} == {"t1"}


def test_invented_facts_are_dropped_and_the_rules_take_over():
    model = ScriptedChatModel(
        responses=[facts_call({"subject": "Ada", "predicate": "lives_in", "object": "Tokyo"})]
    )
    facts = ModelExtractor(model).extract([TURN])
    assert [(f.predicate, f.object) for f in facts] == [("lives_in", "Berlin")]  # from the rules


def test_garbage_from_the_model_falls_back_to_the_rules(caplog):
    facts = ModelExtractor(ScriptedChatModel(responses=[garbage()])).extract([TURN])
    assert [(f.predicate, f.object) for f in facts] == [("lives_in", "Berlin")]


def test_extractor_model_in_the_spec_uses_the_chat_model(tmp_path):
    model = ScriptedChatModel(
        responses=[facts_call({"subject": "Ada", "predicate": "Works At", "object": "Zeiss"})]
    )
    spec = MemorySpec(path=tmp_path / "m.sqlite", extractor="model", embeddings=False)
    with GraphMemory.from_spec(spec, chat_model=model) as memory:
        ids = memory.add_episode([Turn(TURN.text, speaker="Ada")], session_id="s", at=AT)
        (fact,) = memory.facts(subject="Ada")
    assert (fact.predicate, fact.object, fact.sources) == ("works_at", "Zeiss", (ids[0],))
    assert len(model.calls) == 1
