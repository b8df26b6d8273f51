"""Memory on the real path: goalgraph's MCP server offers memory_search over the agent's graph
memory, and the bundled model answers from an ingested document."""

from __future__ import annotations

import pytest

from goalgraph import Agent, AgentSpec
from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.ingest import ingest_document
from goalgraph.memory.recall import RUNS_SESSION
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
from goalgraph.tools import ToolBox

NOTES = (
    "# Field notes\n\nThe launch code word is pelican. The rehearsal is on Tuesday.\n\n"
    "## Travel\n\nAda's sister Mia lives in Oslo and works at Nordlys Labs.\n"
)


@pytest.fixture
def spec(tmp_path) -> AgentSpec:
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    spec = AgentSpec(workspace=tmp_path / "ws", checkpoint_path=tmp_path / "cp.sqlite")
    with GraphMemory(spec.memory.resolved_path()) as memory:
        ingest_document(notes, memory)
    return spec


async def test_the_builtin_server_searches_the_agents_memory(spec):
    servers = spec.all_servers()
    async with ToolBox.open(servers) as box:
        assert "memory_search" in {tool.name for tool in box.tools}
        found = await box.call("memory_search", {"query": "Where does Mia live?"})
        assert found.ok and "Mia lives in Oslo" in found.content
        missing = await box.call("memory_search", {"query": "zebra xylophone"})
        assert missing.ok and "nothing in memory" in missing.content
        refused = await box.call("memory_search", {"query": ""})
        assert not refused.ok  # min_length: the schema refuses an empty query


async def test_no_memory_no_memory_tool(tmp_path):
    spec = AgentSpec(workspace=tmp_path / "ws", memory={"backend": "none"})
    async with ToolBox.open(spec.all_servers()) as box:
        assert "memory_search" not in {tool.name for tool in box.tools}


def test_a_scripted_agent_uses_memory_search_and_the_run_is_remembered(spec):
    model = ScriptedChatModel(
        responses=[
            plan(("search memory", "memory_search")),
            tool_call("memory_search", query="launch code word"),
            final_answer("pelican"),
        ]
    )
    with Agent(spec.model_copy(update={"final_answer": "model"}), model=model) as agent:
        result = agent.run("What is the launch code word in my notes?", thread_id="t1")
    assert result.status == "done" and result.answer == "pelican"
    assert "pelican" in result.observations[0]["content"]
    with GraphMemory(spec.memory.resolved_path()) as memory:
        (run,) = memory.similar_runs("launch code word")
        assert run.thread_id == "t1" and run.answer == "pelican"
        assert memory.search("launch code", session_id=RUNS_SESSION, budget_tokens=50).turns


@pytest.mark.model
def test_the_bundled_model_answers_from_an_ingested_document(spec):
    with Agent(spec) as agent:
        result = agent.run("Search my notes for the launch code word")
    assert result.status == "done", result
    assert [o["tool"] for o in result.observations if o["ok"]] == ["memory_search"]
    assert "pelican" in (result.answer or "")


@pytest.mark.model
def test_the_bundled_model_extracts_only_facts_its_turn_supports():
    from datetime import UTC, datetime

    from goalgraph.llm import LocalChatModel
    from goalgraph.memory.extract import ModelExtractor, TurnText

    at = datetime(2024, 5, 1, tzinfo=UTC)
    turns = [
        TurnText("a", "Ada", "I moved to Lisbon last month.", at),
        TurnText("b", "Bob", "My favourite book is Dune.", at),
        TurnText("c", "Cy", "Thanks, see you soon!", at),
    ]
    extractor = ModelExtractor(LocalChatModel.from_spec(AgentSpec().model))
    facts = extractor.extract(turns)
    assert {f.source for f in facts} >= {"a", "b"}  # from the model, or the rules behind it
    text = {turn.id: turn.text.lower() for turn in turns}
    for fact in facts:
        assert all(word in text[fact.source] for word in fact.object.lower().split()), fact
