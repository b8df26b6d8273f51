"""An orchestrator's misassigned step reaches the member offered its tool, over goalgraph's real
MCP server and the evaluation's researcher/writer team."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import AgentSpec, Team
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

TEAM_SPEC = Path(__file__).parents[2] / "benchmarks" / "tasks" / "teams" / "researcher_writer.yaml"


def test_a_read_step_given_to_the_writer_is_read_by_the_researcher(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "prices.txt").write_text("apple 3\npear 5\n", encoding="utf-8")
    spec = AgentSpec.from_yaml(
        TEAM_SPEC, workspace=workspace, final_answer="model", memory={"backend": "none"}
    )
    model = ScriptedChatModel(
        responses=[
            plan(("Read prices.txt", "writer")),  # the writer may only write
            plan(("Read prices.txt", "read_file")),
            tool_call("read_file", path="prices.txt"),
            final_answer("pear 5"),
            plan(("Save the price of a pear in pear.txt", "write_file")),
            tool_call("write_file", path="pear.txt", content="5"),
            final_answer("saved"),
        ],
        goalgraph_profile="standard",
    )
    goal = "Read prices.txt and save the price of a pear in pear.txt"
    with Team(spec, model=model, checkpointer=InMemorySaver()) as team:
        result = team.run(goal, thread_id="fit")
    assert result.status == "done", result.message
    assert [(step["agent"], step["status"]) for step in result.plan] == [
        ("researcher", "done"),
        ("writer", "done"),
    ]
    assert (workspace / "pear.txt").read_text(encoding="utf-8") == "5"
    assert (workspace / "prices.txt").read_text(encoding="utf-8") == "apple 3\npear 5\n"
