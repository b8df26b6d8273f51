"""Build a team's graph: a LangGraph ``StateGraph`` whose member nodes run the seven-node agent
graph as subgraphs (so Studio draws them, and checkpoints, approvals and time travel reach inside).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from goalgraph.resources import AgentResources, ToolSet
from goalgraph.spec import AgentSpec, SpecError, TeamSpec
from goalgraph.teams.budget import TeamLimits
from goalgraph.teams.debate import add_debate_nodes
from goalgraph.teams.members import Member, build_members
from goalgraph.teams.orchestrator import add_orchestrator_nodes
from goalgraph.teams.pipeline import add_pipeline_nodes
from goalgraph.teams.state import TeamInput, TeamOutput, TeamState

__all__ = ["build_team_graph", "team_of"]


def team_of(spec: AgentSpec) -> TeamSpec:
    """Return how ``spec``'s agents work together (an orchestrator over all when unsaid).

    Raises:
        SpecError: if ``spec`` declares no agents.
    """
    if not spec.agents:
        raise SpecError("a team needs agents: declare them under 'agents:' in the spec")
    return spec.team or TeamSpec()


def build_team_graph(
    spec: AgentSpec,
    *,
    model: BaseChatModel | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    tools: Sequence[BaseTool] | ToolSet | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    resources: AgentResources | None = None,
    members: Mapping[str, Member] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the graph of the team that ``spec`` declares.

    Args:
        spec: A spec with ``agents`` (and ``team``); its top-level sections are the team's
            defaults and its ``limits`` and ``safety.max_tool_calls`` the team's shared budget.
        model: A chat model for the team and every member, instead of the spec's.
        models: Chat models by agent name, over ``model``.
        tools: LangChain tools or a ``ToolSet`` for every member, instead of MCP servers.
        checkpointer: Where to checkpoint (members checkpoint in it too, under their namespace).
        store: A LangGraph store.
        resources: The team's own resources (its planner's model, shared tools and memory).
        members: Members built already (by ``build_members``) over ``resources``.

    Returns:
        The compiled graph; ``graph.resources`` and ``graph.members`` hold what to close.

    Raises:
        SpecError: if ``spec`` declares no agents.
    """
    team = team_of(spec)
    lead = resources or AgentResources(spec, model=model, tools=tools)
    names = team.members(list(spec.agents))
    if members is None:
        members = build_members(spec, names, lead=lead, model=model, models=models, tools=tools)
    limits = TeamLimits.of(spec)
    builder: StateGraph[TeamState, Any, TeamInput, TeamOutput] = StateGraph(
        TeamState, input_schema=TeamInput, output_schema=TeamOutput
    )
    if team.pattern == "pipeline":
        stages = {name: members[name] for name in team.stages}
        add_pipeline_nodes(builder, lead=lead, members=stages, limits=limits)
    elif team.pattern == "debate":
        assert team.judge is not None  # TeamSpec checks it
        add_debate_nodes(
            builder,
            lead=lead,
            debaters={name: members[name] for name in team.debaters},
            judge=members[team.judge],
            rounds=team.rounds,
            limits=limits,
        )
    else:
        specialists = {name: members[name] for name in names}
        add_orchestrator_nodes(builder, lead=lead, members=specialists, limits=limits)
    compiled = builder.compile(
        checkpointer=checkpointer, store=store, name=f"goalgraph-{team.pattern}"
    )
    compiled.resources = lead  # type: ignore[attr-defined]
    compiled.members = dict(members)  # type: ignore[attr-defined]
    return compiled
