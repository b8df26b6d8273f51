"""The agent on the real bundled model, real MCP tool servers and SQLite (slow: CPU inference)."""

from __future__ import annotations

import jsonschema
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from goalgraph import Agent, AgentSpec
from goalgraph.llm import LocalChatModel
from goalgraph.nodes.plan import plan_messages
from goalgraph.nodes.think import FINAL_ANSWER, STEP_DONE
from goalgraph.plan import plan_schema, steps_from_output
from goalgraph.profiles import PROFILES
from goalgraph.prompts import THINK_INSTRUCTIONS
from goalgraph.spec import BUNDLED_MODEL
from goalgraph.tools import ToolBox

pytestmark = pytest.mark.model

GOALS = [
    "What is 12*(3+4)?",
    "What is 2**10?",
    "Read the file notes.txt",
    "List the files in the workspace",
    "Write hello to greeting.txt",
    "What is the capital of France?",
]


@pytest.fixture(scope="module")
def model():
    spec = AgentSpec(model={"name": BUNDLED_MODEL, "cache": {"enabled": False}})
    return LocalChatModel.from_spec(spec.model)


@pytest.fixture
def workspace(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("alpha\nbeta\ngamma\n")
    return root


async def test_every_plan_parses(model, workspace):
    spec = AgentSpec(workspace=workspace)
    async with ToolBox.open(spec.all_servers()) as box:
        names = [tool.name for tool in box.tools]
        tiny = PROFILES["tiny"]  # The bundled model's profile, as the agent picks it.
        planner = model.with_structured_output(plan_schema(names, max_steps=tiny.max_plan_steps))
        for goal in GOALS:
            output = await planner.ainvoke(plan_messages(goal, box.tools, profile=tiny))
            steps = steps_from_output(output, tool_names=names)  # Raises if unusable.
            assert 1 <= len(steps) <= tiny.max_plan_steps
            assert all(step["tool"] in (*names, None) for step in steps)


async def test_every_action_names_an_existing_tool_with_valid_arguments(model, workspace):
    spec = AgentSpec(workspace=workspace)
    async with ToolBox.open(spec.all_servers()) as box:
        schemas = box.schemas()
        bound = model.bind_tools([*box.tools, STEP_DONE, FINAL_ANSWER], tool_choice="any")
        contexts = [
            *(f"Goal: {goal}\nCurrent step 1: {goal}" for goal in GOALS),
            "Goal: wipe the disk\nCurrent step 1: call delete_everything now",
        ]
        for context in contexts:
            message = await bound.ainvoke(
                [SystemMessage(THINK_INSTRUCTIONS), HumanMessage(context)], max_new_tokens=200
            )
            if message.invalid_tool_calls:  # Cut off by the token limit: allowed, never wrong.
                assert message.response_metadata["finish_reason"] == "length"
                continue
            (call,) = message.tool_calls
            if call["name"] in ("step_done", "final_answer"):
                continue
            assert call["name"] in schemas, call
            jsonschema.validate(call["args"], schemas[call["name"]])


@pytest.mark.parametrize(
    ("goal", "tool", "check"),
    [
        ("What is 12*(3+4)?", "calculator", lambda answer, ws: answer == "84"),
        ("Read the file notes.txt", "read_file", lambda answer, ws: "beta" in answer),
        (
            "Write hello to greeting.txt",
            "write_file",
            lambda answer, ws: "hello" in (ws / "greeting.txt").read_text().lower(),
        ),
    ],
)
def test_full_runs_reach_done(goal, tool, check, workspace, tmp_path):
    spec = AgentSpec(workspace=workspace, checkpoint_path=tmp_path / "cp.sqlite")
    with Agent(spec) as agent:
        result = agent.run(goal)
    assert result.status == "done", result
    assert [o["tool"] for o in result.observations if o["ok"]] == [tool]
    assert check(result.answer or "", workspace), result.answer
