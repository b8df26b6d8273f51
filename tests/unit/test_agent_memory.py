"""Long-term memory in the agent loop (scripted model, real GraphMemory file): recall, lessons."""

from __future__ import annotations

import functools
import logging

import pytest

from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.recall import lessons_from_run, recall
from goalgraph.memory.types import Turn
from goalgraph.testing import final_answer, plan, tool_call


@pytest.fixture
def make_agent(make_agent):
    """Scripted agents under the standard profile, whose memory reaches the prompt."""
    return functools.partial(make_agent, profile="standard")


def plan_prompt(model) -> str:
    return str(model.calls[0][-1].content)


def test_a_run_is_remembered_and_recalled_when_a_similar_goal_comes(make_agent, tmp_path):
    first, _ = make_agent(
        [
            plan(("use boom", "boom")),
            tool_call("boom", message="a"),
            tool_call("boom", message="b"),
            plan(("compute instead", "calculator")),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ],
        limits={"max_step_attempts": 2},
    )
    assert first.run("get five from the numbers").status == "done"

    second, model = make_agent(
        [
            plan(("compute", "calculator")),
            tool_call("calculator", expression="2+3"),
            final_answer("5"),
        ]
    )
    assert second.run("get five from numbers again").status == "done"

    prompt = plan_prompt(model)
    assert "What you remember:" in prompt
    assert "'use boom' failed with boom: " in prompt  # the lesson of the first run
    assert "worked with calculator" not in prompt  # plain success teaches nothing trustworthy
    with GraphMemory(tmp_path / "memory.sqlite") as memory:
        runs = memory.similar_runs("get five from the numbers")
        assert {run.status for run in runs} == {"done"} and len(runs) == 2


def test_facts_stated_in_a_goal_are_learned_and_reach_the_next_plan(make_agent):
    first, _ = make_agent([plan(("answer", None)), final_answer("noted")])
    first.run("My name is Ada Quill and I live in Lyon. Note it.")

    second, model = make_agent([plan(("answer", None)), final_answer("Lyon")])
    second.run("Where does Ada Quill live?")

    assert "Ada Quill lives in Lyon" in plan_prompt(model)


def test_the_same_goal_twice_recalls_the_same_text(make_agent):
    """A stable recall keeps prompts (and the generation cache's keys) stable across runs."""
    script = [
        plan(("compute", "calculator")),
        tool_call("calculator", expression="6*7"),
        final_answer("42"),
    ]
    prompts = []
    for _ in range(3):
        agent, model = make_agent(list(script))
        agent.run("What is 6*7?")
        prompts.append(plan_prompt(model))
    assert "What you remember:" not in prompts[0]
    assert prompts[1] == prompts[2]


def test_memory_off_adds_nothing_to_the_prompt(make_agent, tmp_path):
    agent, model = make_agent(
        [plan(("answer", None)), final_answer("ok")], memory={"backend": "none"}
    )
    agent.run("I live in Lyon.")
    assert "What you remember" not in plan_prompt(model)
    assert not (tmp_path / "memory.sqlite").exists()


def test_a_damaged_memory_file_does_not_stop_the_agent(make_agent, tmp_path, caplog):
    (tmp_path / "memory.sqlite").write_bytes(b"garbage" * 1000)
    agent, _ = make_agent([plan(("answer", None)), final_answer("ok")])
    with caplog.at_level(logging.WARNING):
        result = agent.run("Say ok")
    assert result.status == "done" and result.answer == "ok"
    assert "memory is unavailable" in caplog.text and "damaged" in caplog.text
    assert (tmp_path / "memory.sqlite").read_bytes() == b"garbage" * 1000


def test_recall_puts_profile_lessons_and_facts_within_the_budget(tmp_path):
    with GraphMemory(tmp_path / "m.sqlite") as memory:
        memory.set_profile("name", "Ada")
        memory.add_episode(
            [Turn(f"I visited museum number {i} in Lyon today.", speaker="Ada") for i in range(50)],
            session_id="chat",
        )
        text = recall(memory, "Which museums in Lyon did Ada visit?", budget_tokens=60)
        assert text.startswith("About the user: name: Ada")
        assert "museum number" in text
        assert len(text.split()) / 1.3 <= 60
        assert recall(memory, "anything", budget_tokens=0) == ""


def test_past_goals_reach_the_plan_only_when_related_to_this_one(tmp_path):
    """Earlier goals follow one another unrelated: only those sharing a content word with the
    goal are recalled, and never the goal itself (a small planner copied "write hi" as a step)."""
    from goalgraph.memory.recall import RUNS_SESSION

    goals = [
        "write hi",
        "Compute 12*(3+4) and save the result to result.txt",
        "do it",
        "My locker code is 4812.",
        "What is 6*7?",
    ]
    with GraphMemory(tmp_path / "m.sqlite") as memory:
        memory.add_episode([Turn(g, speaker="user") for g in goals], session_id=RUNS_SESSION)
        text = recall(
            memory, "Compute 12*(3+4) and save the result to result.txt", budget_tokens=400
        )
        assert "write hi" not in text and "do it\n" not in text and "6*7" not in text
        assert "user: Compute 12*(3+4)" not in text
        assert "locker" not in text
        code = recall(memory, "What is my locker code?", budget_tokens=400)
        assert "My locker code is 4812." in code


def test_lessons_name_what_failed_and_was_blocked():
    from langchain_core.messages import ToolMessage

    state = {
        "status": "stopped_limit",
        "status_reason": "step limit reached",
        "plan": [
            {"description": "read notes", "tool": "read_file", "status": "done", "attempts": 0},
            {"description": "fix", "tool": "python", "status": "failed", "attempts": 2,
             "result": "SyntaxError"},
        ],
        "messages": [ToolMessage("Blocked: path escapes the workspace", tool_call_id="1",
                                 name="write_file")],
    }  # fmt: skip
    assert lessons_from_run(state) == (
        "'fix' failed with python: SyntaxError.",
        "write_file was blocked: path escapes the workspace",
        "The run ended stopped_limit: step limit reached.",
    )


def test_auto_recall_keeps_memory_out_of_the_bundled_models_prompts():
    from goalgraph import AgentSpec
    from goalgraph.resources import AgentResources
    from goalgraph.testing import ScriptedChatModel

    assert not AgentResources(AgentSpec()).recalls_into_prompt()
    assert AgentResources(AgentSpec(), model=ScriptedChatModel()).recalls_into_prompt()
    assert AgentResources(AgentSpec(memory={"recall": "prompt"})).recalls_into_prompt()
    endpoint = AgentSpec(model={"provider": "openai", "name": "m", "base_url": "http://x/v1"})
    assert AgentResources(endpoint).recalls_into_prompt()
    given = AgentResources(AgentSpec(memory={"recall": "tool"}), model=ScriptedChatModel())
    assert not given.recalls_into_prompt()
