"""The Python API of teams: ``Team``, an ``Agent`` whose graph is a team of agents.

Everything ``Agent`` offers works on a team thread: ``run``, ``stream``, ``resume`` (an approval
asked inside any member), ``history``, ``state`` and ``replay``, sync and async.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Command

from goalgraph.agent import Agent, RunResult, has_work_left
from goalgraph.events import AgentEvent, events_from_update
from goalgraph.resources import ToolSet
from goalgraph.spec import AgentSpec
from goalgraph.state import Counters, PlanStep, RunStatus
from goalgraph.teams.graph import build_team_graph, team_of
from goalgraph.teams.members import build_members
from goalgraph.teams.state import MemberRun, TeamStep, no_budget

__all__ = ["Team", "TeamResult", "team_events"]


@dataclass(frozen=True)
class TeamResult(RunResult):
    """How a team run ended (or paused): a ``RunResult`` plus each member's run.

    ``plan`` holds the orchestrator's steps, each with its ``agent``; ``counters`` what the whole
    team used; ``pending_approval`` names the ``agent`` whose tool call waits for a decision.

    Attributes:
        runs: Every member run, in the order they ended.
        winner: The debater whose answer the judge picked (debate pattern).
    """

    runs: list[MemberRun] = field(default_factory=list)
    winner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict."""
        return {**super().to_dict(), "runs": self.runs, "winner": self.winner}


class Team(Agent):
    """A team of named agents working on one goal: orchestrator, pipeline or debate.

    Example:
        >>> with Team("examples/teams/pipeline.yaml") as team:         # doctest: +SKIP
        ...     result = team.run("What is 12*(3+4)? Explain the result.")
        ...     print(result.status, [run["agent"] for run in result.runs])
        done ['researcher', 'writer', 'reviewer']
    """

    def __init__(
        self,
        spec: AgentSpec | str | os.PathLike[str] | None = None,
        *,
        model: BaseChatModel | None = None,
        models: Mapping[str, BaseChatModel] | None = None,
        tools: Sequence[BaseTool] | ToolSet | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        **spec_fields: Any,
    ) -> None:
        """Create a team; nothing is loaded or started until the first run.

        Args:
            spec: The team spec, or the path of its YAML file; it must declare ``agents``.
            model: A chat model for the team and every member instead of the spec's.
            models: Chat models by agent name, over ``model``.
            tools: LangChain tools or a ``ToolSet`` for every member instead of MCP servers.
            checkpointer: A LangGraph checkpointer (default: the spec's, as for ``Agent``).
            store: A LangGraph store.
            **spec_fields: ``AgentSpec`` fields, when ``spec`` is omitted.

        Raises:
            SpecError: if the spec declares no agents or its team is inconsistent.
        """
        if isinstance(spec, str | os.PathLike):
            spec = AgentSpec.from_yaml(Path(spec))
        super().__init__(
            spec, model=model, tools=tools, checkpointer=checkpointer, store=store, **spec_fields
        )
        self.team = team_of(self.spec)
        given = model if isinstance(model, BaseChatModel) else None
        self.members = build_members(
            self.spec,
            self.team.members(list(self.spec.agents)),
            lead=self._resources,
            model=given,
            models=models,
            tools=tools,
        )

    async def aclose(self) -> None:
        """Stop the members' and the team's MCP servers and close the checkpoint database."""
        for member in self.members.values():
            await member.resources.aclose()
        await super().aclose()

    def _build_graph(
        self, checkpointer: BaseCheckpointSaver[Any]
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        return build_team_graph(
            self.spec,
            resources=self._resources,
            members=self.members,
            checkpointer=checkpointer,
            store=self._store,
        )

    async def _resume_input(self, thread_id: str, approve: bool | None, reason: str) -> Any:
        graph = await self.graph()
        snapshot = await graph.aget_state(self.run_config(thread_id))
        if not snapshot.values:
            raise ValueError(f"no run with thread id {thread_id!r}")
        waiting = [(task.name, found) for task in snapshot.tasks for found in task.interrupts]
        if waiting:
            if approve is None:
                raise ValueError(
                    f"thread {thread_id!r} is waiting for approval of {waiting[0][0]}'s tool "
                    "call: pass approve=True or False"
                )
            # By id: members running side by side may each wait; one decision answers one.
            return Command(resume={waiting[0][1].id: {"approve": approve, "reason": reason}})
        if approve is not None:
            raise ValueError(f"thread {thread_id!r} is not waiting for approval")
        return None

    async def _node_events(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        graph_input: Any,
        config: RunnableConfig,
    ) -> AsyncIterator[AgentEvent]:
        plans: dict[str, list[Any]] = {}
        async for item in graph.astream(graph_input, config, stream_mode="updates", subgraphs=True):
            namespace, chunk = cast(tuple[tuple[str, ...], dict[str, Any]], item)
            # A member's node runs in namespace "<agent>:<task id>".
            agent = namespace[0].split(":")[0] if namespace else ""
            for node, update in chunk.items():
                if node == "__interrupt__" or not isinstance(update, dict):
                    continue
                if not agent:
                    for event in team_events(node, update):
                        yield event
                    continue
                for event in events_from_update(node, update, plans.get(agent, [])):
                    yield dataclasses.replace(event, agent=agent)
                plans[agent] = update.get("plan") or plans.get(agent, [])

    def _result(self, thread_id: str, snapshot: Any) -> TeamResult:
        values = snapshot.values or {}
        status: RunStatus = values.get("status", "failed")
        message = values.get("status_reason", "")
        pending = None
        for task in snapshot.tasks:
            if task.interrupts:
                found = task.interrupts[0]
                pending = {**dict(found.value), "agent": task.name, "interrupt_id": found.id}
                status = "awaiting_approval"
                message = f"waiting for approval of {task.name}'s call of {pending.get('tool')}"
                break
        if pending is None and has_work_left(snapshot) and status == "running":
            status, message = "failed", "the run was interrupted; `resume` continues it"
        budget = values.get("budget") or no_budget()
        return TeamResult(
            thread_id=thread_id,
            status=status,
            message=message,
            answer=values.get("answer"),
            plan=[_as_plan_step(step) for step in values.get("plan") or []],
            counters=Counters(
                steps=budget["steps"],
                replans=budget["replans"],
                tool_calls=budget["tool_calls"],
                blocked=budget["blocked"],
                elapsed_s=budget["elapsed_s"],
            ),
            pending_approval=pending,
            runs=list(values.get("runs") or []),
            winner=values.get("winner"),
        )


def _as_plan_step(step: TeamStep) -> PlanStep:
    """Return a team step in the ``PlanStep`` shape, plus its ``agent``."""
    return PlanStep(  # type: ignore[typeddict-unknown-key]
        id=step["id"],
        description=step["description"],
        tool=None,
        depends_on=[],
        success_criteria="",
        status=step["status"],
        attempts=0,
        result=step["result"],
        agent=step["agent"],
    )


def team_events(node: str, update: dict[str, Any]) -> list[AgentEvent]:
    """Translate a team node's update into events: the plan handed out, and each member's end."""
    events = []
    plan = _plain(update.get("plan"))
    if node in ("plan", "replan") and plan:
        lines = "\n".join(
            f"  {step['id']}. [{step['status']}] {step['description']} -> {step['agent']}"
            for step in plan
        )
        events.append(AgentEvent("plan" if node == "plan" else "replan", node, {"text": lines}))
    for run in _plain(update.get("runs")) or []:
        outcome = run["answer"] if run["status"] == "done" else run["reason"]
        events.append(
            AgentEvent(
                "step",
                node,
                {
                    "id": run.get("step") or run.get("round") or 0,
                    "status": run["status"],
                    "description": f"{run['task'][:120]} => {str(outcome)[:200]}",
                },
                agent=run["agent"],
            )
        )
    return events


def _plain(value: Any) -> Any:
    """Unwrap an ``Overwrite`` (a node's reset of a reducer channel)."""
    return getattr(value, "value", value)
