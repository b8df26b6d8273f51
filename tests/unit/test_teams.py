"""Teams with the scripted model: each pattern, the shared budget, approvals inside a member."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TOOLS
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import AgentSpec, SpecError, Team
from goalgraph.audit import AuditLog
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

AGENTS = {
    "researcher": {"description": "computes and looks things up", "instructions": "Find facts."},
    "writer": {"description": "writes the answer", "instructions": "Write it up."},
}


def scripted(*responses: AIMessage) -> ScriptedChatModel:
    return ScriptedChatModel(responses=list(responses), goalgraph_profile="tiny")


@pytest.fixture
def make_team() -> Iterator[Callable[..., Team]]:
    teams: list[Team] = []

    def build(
        model: ScriptedChatModel | None = None,
        *,
        models: dict[str, ScriptedChatModel] | None = None,
        agents: dict[str, Any] | None = None,
        checkpointer: Any = None,
        **spec: Any,
    ) -> Team:
        spec.setdefault("final_answer", "model")
        team = Team(
            AgentSpec(builtin_tools=False, agents=agents or AGENTS, **spec),
            model=model,
            models=models,
            tools=TOOLS,
            checkpointer=checkpointer or InMemorySaver(),
        )
        teams.append(team)
        return team

    yield build
    for team in teams:
        team.close()


def researcher_computes(expression: str, answer: str) -> list[AIMessage]:
    return [
        plan(("compute", "calculator")),
        tool_call("calculator", expression=expression),
        final_answer(answer),
    ]


# ----- spec -------------------------------------------------------------------------------------


def test_team_spec_errors_are_clear(make_team):
    with pytest.raises(SpecError, match="unknown agent"):
        AgentSpec(agents=AGENTS, team={"pattern": "pipeline", "stages": ["researcher", "editor"]})
    with pytest.raises(SpecError, match="needs agents"):
        AgentSpec(team={"pattern": "pipeline", "stages": ["a"]})
    with pytest.raises(SpecError, match="more than once"):
        AgentSpec(agents=AGENTS, team={"pattern": "pipeline", "stages": ["writer", "writer"]})
    with pytest.raises(SpecError, match="reserved"):
        AgentSpec(agents={"finish": {}})
    with pytest.raises(SpecError, match="at least two debaters"):
        AgentSpec(
            agents=AGENTS, team={"pattern": "debate", "debaters": ["writer"], "judge": "researcher"}
        )
    with pytest.raises(SpecError, match="a team needs agents"):
        Team(AgentSpec(builtin_tools=False), model=scripted(), tools=TOOLS)


def test_member_spec_merges_its_sections_over_the_teams():
    from goalgraph.teams import member_spec

    spec = AgentSpec(
        limits={"max_steps": 30, "max_replans": 1},
        safety={"deny_tools": ["boom"]},
        agents={
            "writer": {"limits": {"max_steps": 4}, "safety": {"require_approval": ["write_note"]}}
        },
    )
    writer = member_spec(spec, "writer")
    assert writer.limits.max_steps == 4 and writer.limits.max_replans == 1
    assert writer.safety.require_approval == ["write_note"]
    assert writer.safety.deny_tools == ["boom"]  # the team's setting stays
    assert writer.agents == {} and writer.team is None


# ----- pipeline ---------------------------------------------------------------------------------


def test_pipeline_passes_each_stage_output_on(make_team):
    model = scripted(
        *researcher_computes("12*(3+4)", "84"),
        plan("write the sentence"),
        final_answer("The result is 84."),
    )
    team = make_team(model, team={"pattern": "pipeline", "stages": ["researcher", "writer"]})
    events = list(team.stream("What is 12*(3+4)? Say it in a sentence.", thread_id="p1"))
    result = events[-1].result
    assert result.status == "done", result.message
    assert result.answer == "The result is 84."
    assert [(r["agent"], r["status"], r["answer"]) for r in result.runs] == [
        ("researcher", "done", "84"),
        ("writer", "done", "The result is 84."),
    ]
    # The writer's goal held its instructions, the team goal and the researcher's answer.
    writer_goal = str(model.calls[3][-1].content)
    assert "Write it up." in writer_goal and "Input from researcher:\n84" in writer_goal
    # Progress names the acting agent.
    acting = {(e.agent, e.kind) for e in events}
    assert ("researcher", "tool_call") in acting and ("researcher", "observation") in acting
    assert ("writer", "decision") in acting
    assert result.counters["tool_calls"] == 1 and result.counters["steps"] >= 3


def test_pipeline_stops_at_a_failed_stage_with_its_reason(make_team):
    model = scripted(
        plan(("compute", "boom")),
        *[tool_call("boom", message=f"try {i}") for i in range(3)],
    )
    team = make_team(
        model,
        team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
        agents={**AGENTS, "researcher": {"limits": {"max_replans": 0}}},
    )
    result = team.run("compute", thread_id="p2")
    assert result.status == "failed"
    assert result.message.startswith("stage researcher ended stopped_limit: step 1 failed 3 times")
    assert [r["agent"] for r in result.runs] == ["researcher"]  # the writer never started


# ----- orchestrator -----------------------------------------------------------------------------


def test_orchestrator_assigns_steps_and_passes_results_on(make_team):
    model = scripted(
        plan(("compute 12*(3+4)", "researcher"), ("write the sentence", "writer")),
        *researcher_computes("12*(3+4)", "84"),
        plan("write"),
        final_answer("It is 84."),
    )
    team = make_team(model)  # no team section: an orchestrator over every agent
    result = team.run("Compute 12*(3+4) and write a sentence.", thread_id="o1")
    assert result.status == "done", result.message
    assert result.answer == "It is 84."
    assert [(s["agent"], s["status"], s["result"]) for s in result.plan] == [
        ("researcher", "done", "84"),
        ("writer", "done", "It is 84."),
    ]
    assert "Results of earlier steps" in str(model.calls[4][-1].content)
    # The orchestrator saw the specialists' descriptions and could name only them.
    assert "- researcher: computes and looks things up" in str(model.calls[0][0].content)


def test_a_failed_specialist_reports_why_and_the_orchestrator_replans(make_team):
    failing = [plan(("compute", "boom")), *[tool_call("boom", message=f"x{i}") for i in range(3)]]
    model = scripted(
        plan(("compute it", "researcher")),
        *failing,
        plan(("compute it another way", "writer")),  # the replan hands it to the writer
        *researcher_computes("2+2", "4"),
    )
    team = make_team(model, agents={**AGENTS, "researcher": {"limits": {"max_replans": 0}}})
    result = team.run("compute", thread_id="o2")
    assert result.status == "done", result.message
    assert result.answer == "4" and result.counters["replans"] == 1
    failed = result.plan[0]
    assert failed["status"] == "failed"
    assert failed["result"].startswith("stopped_limit: step 1 failed 3 times")
    replan_prompt = str(model.calls[5][-1].content)
    assert "Failed: compute it (researcher)" in replan_prompt and "boom" in replan_prompt


def test_a_replan_that_hands_out_the_failed_step_again_ends_the_run(make_team):
    failing = [plan(("compute", "boom")), *[tool_call("boom", message=f"x{i}") for i in range(3)]]
    model = scripted(
        plan(("compute it", "researcher")),
        *failing,
        plan(("compute it", "researcher")),  # the same assignment again: the team's loop check
    )
    team = make_team(model, agents={**AGENTS, "researcher": {"limits": {"max_replans": 0}}})
    result = team.run("compute", thread_id="o3")
    assert result.status == "failed"
    assert result.message.startswith("no progress: the replan only handed out again what failed")
    assert len(result.runs) == 1  # the researcher was not run a second time


def test_the_no_progress_check_spans_the_team(make_team):
    """A failure the researcher saw twice counts when the writer repeats it: the writer's run
    ends at the team's third sighting instead of spending its own attempts."""
    model = scripted(
        plan(("compute it", "researcher")),
        plan(("compute", "boom")),
        tool_call("boom", message="down"),
        tool_call("boom", message="down"),
        plan(("compute it another way", "writer")),
        plan(("compute", "boom")),
        tool_call("boom", message="down"),
    )
    member_limits = {"limits": {"max_replans": 0, "max_step_attempts": 2}}
    team = make_team(
        model,
        agents={name: {**AGENTS[name], **member_limits} for name in AGENTS},
        limits={"max_replans": 1, "max_repeated_failures": 3},
    )
    result = team.run("compute", thread_id="o4")
    assert result.status != "done"
    researcher, writer = result.runs
    assert researcher["status"] == "stopped_limit" and researcher["counters"]["tool_calls"] == 2
    assert writer["status"] == "failed" and writer["counters"]["tool_calls"] == 1
    assert writer["reason"].startswith("no progress:")
    state = team.state("o4")
    assert list(state["budget"]["failures"].values()) == [3]


# ----- debate -----------------------------------------------------------------------------------


DEBATE_AGENTS = {"optimist": {}, "skeptic": {}, "judge": {"instructions": "Prefer exact numbers."}}


def test_debate_runs_rounds_with_the_others_answers_and_the_judge_picks(make_team):
    optimist = scripted(
        plan("answer"), final_answer("about 80"), plan("answer"), final_answer("84")
    )
    skeptic = scripted(plan("answer"), final_answer("84"), plan("answer"), final_answer("84"))
    judge = scripted(tool_call("Verdict", winner="skeptic", reason="exact"))
    team = make_team(
        models={"optimist": optimist, "skeptic": skeptic, "judge": judge},
        agents=DEBATE_AGENTS,
        team={
            "pattern": "debate",
            "debaters": ["optimist", "skeptic"],
            "judge": "judge",
            "rounds": 2,
        },
    )
    result = team.run("What is 12*7?", thread_id="d1")
    assert result.status == "done", result.message
    assert result.winner == "skeptic" and result.answer == "84"
    assert sorted((r["round"], r["agent"]) for r in result.runs) == [
        (1, "optimist"),
        (1, "skeptic"),
        (2, "optimist"),
        (2, "skeptic"),
    ]
    second_goal = str(optimist.calls[2][-1].content)
    assert "Answers in round 1:" in second_goal and "- skeptic: 84" in second_goal
    assert "Prefer exact numbers." in str(judge.calls[0][0].content)
    assert result.message == "judge picked skeptic: exact"


def test_a_judge_without_a_usable_verdict_takes_the_most_common_answer(make_team):
    from goalgraph.testing import garbage

    models = {
        "optimist": scripted(plan("answer"), final_answer("84")),
        "skeptic": scripted(plan("answer"), final_answer("84 ")),
        "realist": scripted(plan("answer"), final_answer("85")),
        "judge": scripted(garbage()),
    }
    team = make_team(
        models=models,
        agents={**DEBATE_AGENTS, "realist": {}},
        team={
            "pattern": "debate",
            "debaters": ["realist", "optimist", "skeptic"],
            "judge": "judge",
        },
    )
    result = team.run("What is 12*7?", thread_id="d2")
    assert result.status == "done" and result.winner == "optimist"
    assert "the most common answer" in result.message


# ----- budgets and loop checks across the team --------------------------------------------------


def test_the_step_budget_is_shared_by_the_whole_team(make_team):
    model = scripted(*researcher_computes("2+2", "4"), plan("write"), final_answer("four"))
    team = make_team(
        model,
        team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
        limits={"max_steps": 2},  # the researcher needs two steps: nothing is left for the writer
    )
    result = team.run("compute and write", thread_id="b1")
    assert result.status == "stopped_limit"
    assert "team budget spent: 2 of 2 steps used" in result.message
    assert result.counters["steps"] == 2
    assert [r["status"] for r in result.runs] == ["done", "stopped_limit"]


def test_a_member_runs_under_what_is_left_of_the_team_budget(make_team):
    # Each member alone may make 5 tool calls; the team only 2 in all.
    model = scripted(
        plan(("compute", "calculator")),
        tool_call("calculator", expression="1+1"),
        tool_call("calculator", expression="2+2"),
        tool_call("calculator", expression="3+3"),
        final_answer("6"),
    )
    team = make_team(
        model,
        team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
        safety={"max_tool_calls": 2},
        agents={**AGENTS, "researcher": {"safety": {"max_tool_calls": 5}}},
    )
    result = team.run("compute", thread_id="b2")
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 1
    assert result.status == "stopped_limit", result.message
    assert "2 of 2 tool calls used" in result.message


def test_debaters_running_together_split_the_budget(make_team):
    # 5 steps for 2 debaters: 2 each; each needs 2 (a step_done-free final answer after a tool).
    models = {
        name: scripted(
            plan(("compute", "calculator")),
            tool_call("calculator", expression="6*7"),
            tool_call("calculator", expression="7*6"),
            final_answer("42"),
        )
        for name in ("optimist", "skeptic")
    }
    models["judge"] = scripted()
    team = make_team(
        models=models,
        agents=DEBATE_AGENTS,
        limits={"max_steps": 5},
        team={"pattern": "debate", "debaters": ["optimist", "skeptic"], "judge": "judge"},
    )
    result = team.run("What is 6*7?", thread_id="b3")
    assert result.counters["steps"] <= 5
    assert all(r["counters"]["steps"] <= 2 for r in result.runs)
    assert all(r["status"] == "stopped_limit" for r in result.runs)


# ----- approvals inside a member ----------------------------------------------------------------


def approval_team(make_team, decision_answer: str, **kw: Any) -> Team:
    model = scripted(
        plan(("compute", "calculator")),
        tool_call("calculator", expression="2+2"),
        final_answer("4"),
        plan(("save it", "write_note")),
        tool_call("write_note", text="4"),
        final_answer(decision_answer),
    )
    return make_team(
        model,
        team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
        agents={**AGENTS, "writer": {"safety": {"require_approval": ["write_note"]}}},
        **kw,
    )


def test_a_members_approval_surfaces_to_the_caller_and_approve_resumes_inside(make_team, tmp_path):
    team = approval_team(make_team, "saved")
    paused = team.run("compute and save", thread_id="a1")
    assert paused.status == "awaiting_approval"
    assert paused.pending_approval["agent"] == "writer"
    assert paused.pending_approval["tool"] == "write_note"
    assert paused.message == "waiting for approval of writer's call of write_note"
    with pytest.raises(ValueError, match="waiting for approval of writer's tool call"):
        team.resume("a1")

    done = team.resume("a1", approve=True)
    assert done.status == "done" and done.answer == "saved"
    assert [r["agent"] for r in done.runs] == ["researcher", "writer"]  # researcher not re-run
    assert done.counters["tool_calls"] == 2
    records = AuditLog(tmp_path / "audit").read("a1")
    verdicts = [(r["agent"], r["tool"], r["decision"]) for r in records if r["event"] == "verdict"]
    assert verdicts == [("researcher", "calculator", "allow"), ("writer", "write_note", "allow")]
    assert {r["agent"] for r in records if r["event"] == "result"} == {"researcher", "writer"}


def test_deny_inside_a_member_reaches_it_as_a_blocked_action(make_team):
    team = approval_team(make_team, "not saved")
    assert team.run("compute and save", thread_id="a2").status == "awaiting_approval"
    done = team.resume("a2", approve=False, reason="no notes today")
    assert done.status == "done" and done.answer == "not saved"
    assert done.counters["tool_calls"] == 1 and done.counters["blocked"] == 1
    writer_run = done.runs[-1]
    assert writer_run["agent"] == "writer" and writer_run["counters"]["blocked"] == 1


def test_time_travel_reruns_a_member_from_a_team_checkpoint(make_team):
    team = approval_team(make_team, "saved")
    team.run("compute and save", thread_id="h1")
    assert team.resume("h1", approve=True).answer == "saved"
    history = team.history("h1")
    assert history[0].status == "done" and history[0].next == ()
    before_writer = next(h for h in reversed(history) if h.next == ("writer",))

    # Replayed from before the writer: it runs afresh (this time without a tool) on the
    # researcher's kept answer; the researcher does not run again.
    model = team.members["writer"].resources.chat_model()
    model.responses.extend([plan("say it"), final_answer("four, unsaved")])
    replayed = team.replay("h1", before_writer.checkpoint_id)
    assert replayed.status == "done" and replayed.answer == "four, unsaved"
    assert [(r["agent"], r["answer"]) for r in replayed.runs] == [
        ("researcher", "4"),
        ("writer", "four, unsaved"),
    ]
    assert team.result("h1").answer == "four, unsaved"


def test_the_team_graph_draws_each_member_as_a_subgraph(make_team):
    import asyncio

    team = make_team(scripted(), team={"pattern": "pipeline", "stages": ["researcher", "writer"]})
    graph = team._call(team.graph())
    assert dict(graph.get_subgraphs()).keys() == {"researcher", "writer"}
    drawn = graph.get_graph(xray=1).nodes
    assert "researcher:think" in drawn and "writer:safety_check" in drawn
    del asyncio


# ----- the ready team specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "members", "own_nodes"),
    [
        ("orchestrator", {"calculator", "filer"}, {"plan", "replan", "finish"}),
        ("pipeline", {"researcher", "writer", "reviewer"}, {"finish"}),
        ("debate", {"solver", "checker", "judge"}, {"open", "next_round"}),
    ],
)
def test_the_ready_team_specs_build_graphs_with_member_subgraphs(name, members, own_nodes):
    from goalgraph.teams import studio

    graph = getattr(studio, name)
    drawn = set(graph.get_graph().nodes)
    assert members | own_nodes <= drawn
    debaters = members - {"judge"} if name == "debate" else members
    assert set(dict(graph.get_subgraphs())) == debaters  # the judge only asks its model
    assert not any(member.resources._model for member in graph.members.values())  # lazy


def test_cli_runs_a_team_and_refuses_spec_with_team(tmp_path):
    from typer.testing import CliRunner

    from goalgraph.cli import app

    example = Path(__file__).parents[2] / "examples" / "teams" / "pipeline.yaml"
    both = CliRunner().invoke(app, ["run", "x", "--team", str(example), "--spec", str(example)])
    assert both.exit_code != 0 and "either --spec or --team" in both.output


# ----- a member's tools -------------------------------------------------------------------------


def test_a_member_is_offered_only_the_tools_its_policy_allows(make_team):
    import asyncio

    team = make_team(
        scripted(),
        agents={
            "researcher": {"safety": {"allow_tools": ["calculator", "ping"]}},
            "writer": {"safety": {"deny_tools": ["boom"]}},
            "editor": {},
        },
    )

    async def offered(name: str) -> tuple[list[str], list[str]]:
        toolset = await team.members[name].resources.toolset()
        return [tool.name for tool in toolset.tools], sorted(toolset.schemas())

    researcher = asyncio.run(offered("researcher"))
    assert researcher == (["calculator", "ping"], ["calculator", "ping"])
    assert asyncio.run(offered("writer"))[0] == ["calculator", "write_note", "ping"]
    assert asyncio.run(offered("editor"))[0] == ["calculator", "boom", "write_note", "ping"]
    outcome = asyncio.run(
        team.members["researcher"].resources.toolset()
    )  # calls still reach the tool set (the safety layer refuses what the policy forbids)
    assert asyncio.run(outcome.call("calculator", {"expression": "2+3"})).content == "5"
