"""A crash after a node's writes were saved but before the next checkpoint was.

LangGraph saves a finished node's writes first and the next checkpoint at the end of the
superstep. A process killed in between leaves a checkpoint whose ``next`` is empty although the
run is not over; such a run must read as interrupted and resume, never as still ``running``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from conftest import TOOLS
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.serve.registry import TaskRecord, TaskRegistry
from goalgraph.serve.tasks import TaskManager
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call


def crashed_after_plan(thread_id: str) -> Agent:
    """Leave ``thread_id`` as a process killed right after plan's writes were saved leaves it.

    A whole run is made, then every checkpoint after the first superstep (the one plan ran in)
    is dropped: what remains is that checkpoint with plan's saved writes, and no successor.
    """
    saver = InMemorySaver()
    model = ScriptedChatModel(
        responses=[
            plan(("add", "calculator")),
            tool_call("calculator", expression="2+2"),
            final_answer("4"),
            # For the resumed run, which starts at think.
            tool_call("calculator", expression="2+2"),
            final_answer("4"),
        ]
    )
    agent = Agent(
        AgentSpec(builtin_tools=False, final_answer="model"),
        model=model,
        tools=TOOLS,
        checkpointer=saver,
    )
    assert agent.run("add 2 and 2", thread_id=thread_id).status == "done"
    for saved in list(saver.list(agent.run_config(thread_id))):
        if saved.metadata["step"] > 0:
            del saver.storage[thread_id][""][saved.config["configurable"]["checkpoint_id"]]
    return agent


async def _snapshot(agent: Agent, thread_id: str) -> Any:
    graph = await agent.graph()
    return await graph.aget_state(agent.run_config(thread_id))


def test_the_crashed_run_reads_as_interrupted_not_running():
    agent = crashed_after_plan("c1")
    try:
        snapshot = agent._call(_snapshot(agent, "c1"))
        assert snapshot.next == () and [t.name for t in snapshot.tasks] == ["plan"]
        result = agent.result("c1")
        assert result.status == "failed"
        assert "resume" in result.message

        resumed = agent.resume("c1")
        assert resumed.status == "done" and resumed.answer == "4"
        assert [step["status"] for step in resumed.plan] == ["done"]
    finally:
        agent.close()


def test_a_restarted_server_resumes_the_crashed_task(tmp_path: Path):
    agent = crashed_after_plan("t1")
    registry = TaskRegistry(tmp_path / "tasks.sqlite")
    now = time.time()
    registry.save(TaskRecord("t1", None, "add 2 and 2", "running", "", now, now))

    async def recover_and_wait() -> tuple[dict[str, int], str, str]:
        manager = TaskManager(agent, registry=registry)
        counts = await manager.recover()
        task = manager.get("t1", None)
        assert task.runner is not None, "a recovered unfinished task must have a runner"
        await asyncio.wait_for(task.runner, 10)
        return counts, task.status, task.result.answer if task.result else ""

    try:
        counts, status, answer = agent._call(recover_and_wait())
        assert counts == {"resumed": 1}
        assert (status, answer) == ("done", "4")
        assert {r.id: r.status for r in registry.load()} == {"t1": "done"}
    finally:
        registry.close()
        agent.close()
