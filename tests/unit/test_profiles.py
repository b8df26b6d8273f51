"""Model profiles: which rules run for which model, and what they change in a run."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from goalgraph import AgentSpec
from goalgraph.profiles import PROFILES, RULES, resolve_profile
from goalgraph.prompts import RETRY_NOTE
from goalgraph.resources import AgentResources
from goalgraph.spec import SpecError
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call


def test_tiny_turns_every_small_model_rule_on_and_standard_none():
    assert set(RULES) == {
        "plan_examples",
        "cued_steps",
        "restate_statements",
        "force_planned_tool",
        "answer_from_last_step",
        "recall_through_tool",
        "plan_scope",
        "step_history",
        "feedback_last",
        "repeat_recovery",
        "direct_fallback",
        "plan_first_call",
        "settle_repeats",
        "drop_unasked_changes",
        "refuse_copied_examples",
        "plan_directly",
        "drop_invented_optional",
        "rank_tools",
    }
    small_model_rules = set(RULES) - {
        "cued_steps",
        "plan_scope",
        "step_history",
        "feedback_last",
        "repeat_recovery",
        "direct_fallback",
        "plan_first_call",
        "settle_repeats",
        "drop_unasked_changes",
        "refuse_copied_examples",
        "plan_directly",
        "rank_tools",
    }
    assert all(getattr(PROFILES["tiny"], rule) for rule in small_model_rules)
    assert not any(getattr(PROFILES["standard"], rule) for rule in small_model_rules)
    assert PROFILES["standard"].plan_scope and not PROFILES["tiny"].plan_scope
    # Negation-aware, it adds no step a goal forbids, so it is on for every model.
    assert PROFILES["standard"].cued_steps and PROFILES["tiny"].cued_steps
    # Rules measured to help (or not to hurt) the Qwen models, set per profile by measurement.
    assert PROFILES["standard"].feedback_last and PROFILES["standard"].repeat_recovery
    assert PROFILES["tiny"].repeat_recovery and not PROFILES["tiny"].feedback_last
    assert PROFILES["standard"].direct_fallback and not PROFILES["tiny"].direct_fallback
    assert not PROFILES["standard"].plan_first_call and not PROFILES["tiny"].plan_first_call
    assert PROFILES["standard"].drop_unasked_changes and not PROFILES["tiny"].drop_unasked_changes
    assert PROFILES["standard"].refuse_copied_examples
    assert not PROFILES["tiny"].refuse_copied_examples
    assert not PROFILES["standard"].plan_directly and not PROFILES["tiny"].plan_directly
    assert PROFILES["tiny"].max_plan_steps == 3 and PROFILES["standard"].max_plan_steps == 5


def test_single_rules_are_turned_on_and_off_over_a_profile():
    profile = resolve_profile("standard", {"force_planned_tool": True, "cued_steps": False})
    assert profile.force_planned_tool and not profile.cued_steps
    assert profile.name == "standard-cued_steps+force_planned_tool"
    assert resolve_profile("tiny", {"cued_steps": True}) is PROFILES["tiny"]
    with pytest.raises(ValueError, match="unknown rule"):
        resolve_profile("tiny", {"guess_harder": True})
    with pytest.raises(ValueError, match="unknown profile"):
        resolve_profile("huge")


def test_the_spec_refuses_an_unknown_rule_and_names_the_rules():
    with pytest.raises(SpecError, match=r"unknown rule.*force_planned_tool"):
        AgentSpec(model={"rules": {"always_win": True}})


@pytest.mark.parametrize(
    ("spec", "model", "expected"),
    [
        ({}, None, "tiny"),  # the bundled 135M model, decided without loading it
        ({"model": {"provider": "openai", "base_url": "http://127.0.0.1:1/v1"}}, None, "standard"),
        ({}, ScriptedChatModel(goalgraph_rules={}), "standard"),  # a model that states nothing
        (
            {},
            ScriptedChatModel(goalgraph_rules={"direct_fallback": False}),
            "standard-direct_fallback",
        ),
        ({}, ScriptedChatModel(goalgraph_profile="tiny"), "tiny"),
        ({"model": {"profile": "standard"}}, None, "standard"),
        ({"model": {"profile": "tiny"}}, ScriptedChatModel(), "tiny"),
    ],
)
def test_auto_picks_the_profile_from_the_model(spec, model, expected):
    res = AgentResources(AgentSpec(**spec), model=model)
    assert res.profile().name == expected


def test_the_specs_rules_go_over_the_rules_a_model_states():
    stated = ScriptedChatModel(goalgraph_rules={"plan_first_call": False, "direct_fallback": False})
    spec = AgentSpec(model={"rules": {"plan_first_call": True}})
    profile = AgentResources(spec, model=stated).profile()
    assert profile.plan_first_call and not profile.direct_fallback
    assert profile.name == "standard-direct_fallback+plan_first_call"


def test_final_answer_and_recall_follow_the_profile_unless_set():
    tiny = AgentResources(AgentSpec())
    assert tiny.answers_from_last_step() and not tiny.recalls_into_prompt()
    standard = AgentResources(AgentSpec(), model=ScriptedChatModel())
    assert not standard.answers_from_last_step() and standard.recalls_into_prompt()
    pinned = AgentResources(AgentSpec(final_answer="last_step", memory={"recall": "tool"}))
    assert pinned.answers_from_last_step() and not pinned.recalls_into_prompt()


def test_the_standard_profile_lets_the_model_choose_its_tool_and_write_the_answer(make_agent):
    agent, model = make_agent(
        [
            plan(("Compute 6*7", "calculator")),
            tool_call("calculator", expression="6*7"),
            final_answer("6*7 is 42"),
        ],
        profile="standard",
        final_answer="auto",
    )
    result = agent.run("What is 6*7?")
    assert result.status == "done" and result.answer == "6*7 is 42"
    # Every tool and both pseudo-tools are offered on the first attempt, not the planned tool.
    assert {"calculator", "step_done", "final_answer"} <= set(model.tool_names[1])
    assert model.tool_names[2] == ["final_answer"]


def test_plan_first_call_asks_for_a_native_first_call_before_planning(make_agent):
    """The ``plan_first_call`` rule: the model first calls a tool on the goal with every tool
    (and ``final_answer``) bound; only its tool is kept, for the plan's first step. A first call
    that names no tool (a plain reply) leaves the plan free, and the run goes on."""
    agent, model = make_agent(
        [
            tool_call("calculator", expression="6*7"),  # the first call: only its tool is used
            plan(("Compute 6*7", "calculator")),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ],
        profile="standard",
        model={"rules": {"plan_first_call": True}},
    )
    result = agent.run("What is 6*7?")
    assert result.status == "done" and result.answer == "42"
    assert "Call the tool that does the first thing the goal needs" in model.calls[0][0].content
    assert model.calls[0][1].content == "Goal: What is 6*7?"
    assert {"calculator", "final_answer"} <= set(model.tool_names[0])
    assert "step_done" not in model.tool_names[0]
    assert "Goal: What is 6*7?" in model.calls[1][-1].content  # then the planner, as usual

    agent, model = make_agent(
        [
            AIMessage("no idea"),
            plan(("Compute 6*7", "calculator")),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ],
        profile="standard",
        model={"rules": {"plan_first_call": True}},
    )
    assert agent.run("What is 6*7?").answer == "42"


def test_the_tiny_profile_forces_the_planned_tool_and_answers_with_its_result(make_agent):
    agent, model = make_agent(
        [plan(("Compute 6*7", "calculator")), tool_call("calculator", expression="6*7")],
        final_answer="auto",
    )
    result = agent.run("What is 6*7?")
    assert result.status == "done" and result.answer == "42"
    assert model.tool_names[1] == ["calculator"]


def test_agent_takes_model_and_memory_settings_as_spec_fields():
    from goalgraph import Agent

    agent = Agent(model="qwen2.5-coder-0.5b", memory={"backend": "none"})
    assert agent.spec.model.name == "qwen2.5-coder-0.5b" and agent.spec.memory.backend == "none"
    agent = Agent(model={"name": "smollm2", "profile": "standard"})
    assert agent.spec.model.profile == "standard"
    with pytest.raises(TypeError, match="model must be a LangChain chat model"):
        Agent(model=42)


@pytest.mark.parametrize("step_history", [True, False])
def test_step_history_shows_the_model_only_the_current_steps_calls(make_agent, step_history):
    agent, model = make_agent(
        [
            plan(("Compute 6*7", "calculator"), ("Compute 2+3", "calculator")),
            tool_call("calculator", expression="6*7"),
            tool_call("calculator", expression="2+3"),
            final_answer("42 and 5"),
        ],
        profile="standard",
        model={"rules": {"step_history": step_history}},
    )
    result = agent.run("What are 6*7 and 2+3?")
    assert result.status == "done"
    second_step_prompt = model.calls[2]
    earlier_calls = [m for m in second_step_prompt if getattr(m, "tool_calls", None)]
    # The first step's call reaches the second step only as the plan's result line, or also as
    # the call itself (which a small model copies) when the rule is off.
    assert "=> 42" in second_step_prompt[1].content
    assert len(earlier_calls) == (0 if step_history else 1)
    # The final answer still sees every call.
    assert len([m for m in model.calls[3] if getattr(m, "tool_calls", None)]) == 2


@pytest.mark.parametrize("feedback_last", [True, False])
def test_feedback_last_puts_the_failure_note_after_the_failed_call(make_agent, feedback_last):
    agent, model = make_agent(
        [
            plan(("Explode, then compute", "boom")),
            tool_call("boom", message="down"),
            tool_call("calculator", expression="6*7"),
            final_answer("42"),
        ],
        profile="standard",
        model={"rules": {"feedback_last": feedback_last}},
    )
    result = agent.run("Compute 6*7 after a failure")
    assert result.status == "done"
    retry_prompt = model.calls[2]
    context, last = str(retry_prompt[1].content), retry_prompt[-1]
    note = "Note: boom failed: tool 'boom' failed: RuntimeError: boom: down"
    if feedback_last:  # after the failed call and its error, as the turn to answer
        assert isinstance(last, HumanMessage) and str(last.content).startswith(note)
        assert str(last.content).endswith(RETRY_NOTE)
        assert "Note:" not in context
    else:  # in the context, before the failed call
        assert isinstance(last, ToolMessage) and note in context
