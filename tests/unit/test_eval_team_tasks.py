"""Team tasks of the agent task suite: their YAML form, the runner with a Team, the per-agent
record and checks, and the suite's team tasks themselves."""

from __future__ import annotations

from collections import Counter

import pytest
from helpers import BENCHMARKS

from goalgraph.eval.checks import CheckSpec, evaluate
from goalgraph.eval.records import TaskRun, record_event
from goalgraph.eval.suite import SuiteError, load_suite
from goalgraph.eval.tasks import run_suite, task_spec
from goalgraph.events import AgentEvent

TEAM_TASKS = BENCHMARKS / "tasks" / "teams.yaml"
PATTERNS = {"team_orchestrator", "team_pipeline", "team_debate"}

INLINE_TEAM = """
    team:
      agents:
        reader: {safety: {allow_tools: [read_file]}}
        writer: {safety: {allow_tools: [write_file]}}
      team: {pattern: pipeline, stages: [reader, writer]}
"""


def _suite(tmp_path, body: str):
    path = tmp_path / "suite.yaml"
    path.write_text(
        f"kind: team\ntasks:\n  - id: t\n    goal: g\n    check: {{status: done}}\n{body}"
    )
    return path


# ----- the suite's team tasks -------------------------------------------------------------------


def test_the_suite_has_team_tasks_of_every_pattern_half_held_out():
    tasks = [task for task in load_suite([BENCHMARKS / "tasks"]) if task.is_team()]
    assert len(tasks) >= 8
    assert {task.kind for task in tasks} == PATTERNS
    assert Counter(task.split for task in tasks) == {"tuning": 4, "heldout": 4}
    for kind in PATTERNS:  # every pattern in both halves
        assert {task.split for task in tasks if task.kind == kind} == {"tuning", "heldout"}
    for task in tasks:  # the checks say which agent must have done what
        assert task.check.tool_called_by, task.id
        assert task.team["team"]["pattern"] == task.kind.removeprefix("team_")


def test_the_scripted_model_runs_every_team_task_with_a_team():
    tasks = load_suite([TEAM_TASKS])
    result = run_suite(tasks, "scripted", concurrency=4)
    failed = {run.task_id: run.check_failures for run in result.runs if not run.success}
    assert not failed
    runs = {run.task_id: run for run in result.runs}
    for task in tasks:
        run = runs[task.id]
        assert run.validity == 1.0
        agents = {call.agent for call in run.calls}
        assert agents == set(task.check.tool_called_by or {}), task.id  # every call is named
        assert {member["agent"] for member in run.members} >= agents
    approved = runs["team-orch-search-approved-write"]
    assert approved.approvals == 1
    assert [c.agent for c in approved.calls if c.approval_requested] == ["writer"]
    assert [s["agent"] for s in runs["team-orch-read-then-write"].team_plan] == [
        "researcher",
        "writer",
    ]
    debate = runs["team-debate-capital-in-file"]
    assert debate.winner == "searcher" and len(debate.members) == 4  # two rounds of two


def test_a_team_task_runs_under_its_team_spec_with_the_task_overrides(tmp_path):
    task = next(t for t in load_suite([TEAM_TASKS]) if t.id == "team-orch-search-approved-write")
    spec = task_spec(task, tmp_path)
    assert set(spec.agents) == {"researcher", "writer"} and spec.team.pattern == "orchestrator"
    assert spec.agents["writer"].safety.require_approval == ["write_file"]  # the task's override
    assert spec.agents["writer"].safety.allow_tools == ["write_file"]  # the file's, kept
    assert spec.limits.max_steps == 16 and str(spec.workspace) == str(tmp_path / "workspace")


# ----- the YAML form ----------------------------------------------------------------------------


def test_an_inline_team_and_a_script_per_agent_load(tmp_path):
    script = (
        "    script:\n"
        "      reader: [{plan: [{description: read, tool: read_file}]}, "
        "{tool: read_file, args: {path: a.txt}}]\n"
        "      writer: [{tool: write_file, args: {path: b.txt, content: x}}]\n"
    )
    (task,) = load_suite([_suite(tmp_path, INLINE_TEAM + script)])
    assert task.is_team() and task.team["team"]["stages"] == ["reader", "writer"]
    assert task.required_tools() == ["read_file", "write_file"]
    assert task.own_script() == [] and len(task.all_turns()) == 3 and task.scripted()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    script:\n      writer: [{final_answer: x}]\n",
            "a script by agent name is for a team",
        ),
        (INLINE_TEAM + "    script: [{final_answer: x}]\n", "maps each agent's name"),
        (INLINE_TEAM + "    script:\n      editor: [{final_answer: x}]\n", "does not have: editor"),
        (INLINE_TEAM + "    before: [{goal: earlier}]\n", "before runs are for single-agent"),
        ("    team: {team: {pattern: pipeline}}\n", "a team spec needs 'agents:'"),
        ("    team: {agents: {team: {}}}\n", "cannot be named 'team'"),
        ("    team: missing.yaml\n", "cannot read team spec"),
    ],
)
def test_a_malformed_team_task_gives_a_clear_error(body, expected, tmp_path):
    with pytest.raises(SuiteError) as caught:
        load_suite([_suite(tmp_path, body)])
    assert expected in str(caught.value)


def test_a_team_file_is_read_relative_to_the_suite_file(tmp_path):
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "duo.yaml").write_text(
        "agents: {a: {}, b: {}}\nteam: {pattern: pipeline, stages: [a, b]}\n"
    )
    (task,) = load_suite([_suite(tmp_path, "    team: teams/duo.yaml\n")])
    assert task.team == {
        "agents": {"a": {}, "b": {}},
        "team": {"pattern": "pipeline", "stages": ["a", "b"]},
    }


# ----- the record and the per-agent checks ------------------------------------------------------


def _event(kind: str, agent: str, **data) -> AgentEvent:
    return AgentEvent(kind, "node", data, agent=agent)


def test_a_verdict_and_an_observation_go_to_the_same_agents_latest_call(tmp_path):
    run = TaskRun(task_id="t", kind="k", model="m")
    record_event(run, _event("tool_call", "a", tool="calculator", args={"expression": "1+1"}))
    record_event(run, _event("tool_call", "b", tool="read_file", args={"path": "x"}))
    record_event(run, _event("verdict", "a", decision="allow", rule="allowed", by="policy"))
    record_event(run, _event("observation", "a", ok=True, content="2"))
    record_event(run, _event("verdict", "b", decision="block", rule="path_escape", by="policy"))
    record_event(run, _event("plan", "", text="  1. [pending] x -> a"))  # the team's own plan
    first, second = run.calls
    assert (first.agent, first.decision, first.succeeded) == ("a", "allow", True)
    assert (second.agent, second.decision, second.ran) == ("b", "block", False)
    assert run.plans == []

    run.members = [{"agent": "a", "status": "done"}, {"agent": "b", "status": "failed"}]
    check = CheckSpec(
        tool_called_by={"a": "calculator", "b": ["read_file"]},
        tool_not_called_by={"a": "calculator"},
        agents_done=["a", "b", "c"],
    )
    assert evaluate(check, run, tmp_path) == [
        "read_file never ran without error in b's runs",
        "calculator ran in a's runs, but must not",
        "agent b has no run that ended done (failed)",
        "agent c has no run that ended done (never ran)",
    ]
    assert not evaluate(
        CheckSpec(tool_called_by={"a": "calculator"}, agents_done="a"), run, tmp_path
    )


def test_peer_agents_leave_team_tasks_out():
    import asyncio

    from goalgraph.eval.peers import arun_peer_task, single_agent_tasks

    tasks = load_suite([BENCHMARKS / "tasks"])
    single = single_agent_tasks(tasks)
    assert len(single) == len(tasks) - sum(task.is_team() for task in tasks)
    assert not any(task.is_team() for task in single)
    team_task = next(task for task in tasks if task.is_team())
    with pytest.raises(ValueError, match="is a team task; a peer agent runs single-agent tasks"):
        asyncio.run(arun_peer_task(team_task, object(), "m"))  # type: ignore[arg-type]
