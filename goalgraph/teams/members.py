"""A team's members: each a named agent with its own spec, resources and seven-node graph.

A member's graph is goalgraph's own agent graph, compiled without a checkpointer: run from inside a
team node with that node's config, it checkpoints in the team thread under its own namespace, and an
approval ``interrupt()`` in it pauses the whole team and resumes inside it.

A member sees only the tools its ``safety.allow_tools`` and ``safety.deny_tools`` let it call
(``AllowedTools``): a read-only researcher is not offered ``write_file``, so its planner cannot plan
a step it would only be refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.graph.state import CompiledStateGraph

from goalgraph.audit import AuditLog
from goalgraph.graph import build_graph
from goalgraph.memory.backend import MemoryBackend
from goalgraph.nodes.common import new_counters
from goalgraph.resources import AgentResources, ToolSet
from goalgraph.spec import AgentSpec
from goalgraph.state import Counters
from goalgraph.teams.budget import Allowance, capped_spec
from goalgraph.teams.state import MemberRun
from goalgraph.tools.toolbox import ToolResult

__all__ = [
    "AllowedTools",
    "Member",
    "MemberResources",
    "build_members",
    "member_goal",
    "member_run",
    "member_spec",
]

_SCOPE: ContextVar[tuple[MemberResources, AgentSpec, dict[str, int]] | None] = ContextVar(
    "goalgraph_member_scope", default=None
)
"""The member whose run is under way in this context, the spec capped by its allowance, and the
failures the team has seen so far (the run starts with them).

A context variable rather than a per-run copy of the resources: LangGraph copies the context into
every task it starts, so the member's nodes see the capped limits, while concurrent team runs
(a server's) each see their own, over one compiled member graph."""


class AllowedTools:
    """A view of a ``ToolSet`` that offers only the tools a policy lets an agent call.

    ``call`` still reaches every tool: the safety layer has already refused a call that the
    policy does not allow. Other attributes (``server_of``...) are the underlying tool set's.
    """

    def __init__(self, inner: ToolSet, spec: AgentSpec) -> None:
        """Offer the tools of ``inner`` that ``spec.safety`` allows."""
        self._inner = inner
        self._allow = spec.safety.allow_tools
        self._deny = set(spec.safety.deny_tools)
        self.tools: list[BaseTool] = [tool for tool in inner.tools if self.allows(tool.name)]
        """The allowed tools, in the underlying order."""

    def allows(self, name: str) -> bool:
        """Whether the policy lets the agent call ``name``."""
        return (self._allow is None or name in self._allow) and name not in self._deny

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Return each allowed tool's argument JSON schema by name."""
        return {name: schema for name, schema in self._inner.schemas().items() if self.allows(name)}

    async def call(
        self, name: str, args: dict[str, Any], *, timeout_s: float | None = None
    ) -> ToolResult:
        """Run a tool of the underlying set."""
        return await self._inner.call(name, args, timeout_s=timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class MemberResources(AgentResources):
    """A member's resources: its spec (capped during a run), shared model, tools and memory.

    A member whose model or MCP servers are configured exactly like the team's uses the team's
    (``lead``), so a team of four over one model loads it once and starts one tool server.
    """

    def __init__(
        self,
        spec: AgentSpec,
        *,
        name: str,
        lead: AgentResources,
        model: BaseChatModel | None = None,
        tools: Sequence[BaseTool] | ToolSet | None = None,
    ) -> None:
        """Hold ``spec`` for the member ``name``; ``model`` and ``tools`` override the spec's."""
        super().__init__(spec, model=model, tools=tools, memory=None)
        self.name = name
        self._lead = lead
        self._owns_memory = False  # The team's memory, closed by the team.
        self._allowed: tuple[ToolSet, AllowedTools] | None = None
        self.audit = AuditLog(spec.safety.audit_dir, agent=name) if spec.safety.audit else None

    @property
    def spec(self) -> AgentSpec:
        """The member's spec; during a team run, with limits capped by the team's budget."""
        scope = _SCOPE.get()
        return scope[1] if scope is not None and scope[0] is self else self._spec

    @spec.setter
    def spec(self, value: AgentSpec) -> None:
        self._spec = value

    def earlier_failures(self) -> dict[str, int]:
        """Return the failures the team has seen before this member's run started."""
        scope = _SCOPE.get()
        return dict(scope[2]) if scope is not None and scope[0] is self else {}

    def chat_model(self) -> BaseChatModel:
        """Return the member's model: the team's when configured alike, else its own."""
        if self._model is None and self._spec.model == self._lead.spec.model:
            self._model = self._lead.chat_model()
        return super().chat_model()

    async def toolset(self) -> ToolSet:
        """Return the member's tools (the team's when its MCP servers are the team's), offering
        only those its policy allows."""
        if self._toolset is None and self._spec.all_servers() == self._lead.spec.all_servers():
            inner = await self._lead.toolset()
        else:
            inner = await super().toolset()
        safety = self._spec.safety
        if safety.allow_tools is None and not safety.deny_tools:
            return inner
        if self._allowed is None or self._allowed[0] is not inner:
            self._allowed = (inner, AllowedTools(inner, self._spec))
        return self._allowed[1]

    def memory(self) -> MemoryBackend | None:
        """Return the team's long-term memory (one backend for every member)."""
        return self._lead.memory()

    @contextlib.contextmanager
    def capped(
        self, allowance: Allowance, failures: Mapping[str, int] | None = None
    ) -> Iterator[None]:
        """Within this block (and the tasks it starts), apply ``allowance`` to the spec, and
        start runs with the team's ``failures``."""
        token = _SCOPE.set((self, capped_spec(self._spec, allowance), dict(failures or {})))
        try:
            yield
        finally:
            _SCOPE.reset(token)


@dataclass
class Member:
    """One agent of a team.

    Attributes:
        name: Its name in ``agents:``; also its node's name in the team graph.
        description: What it is good at (the orchestrator reads it).
        instructions: Its role, put ahead of every task it gets.
        resources: Its model, tools and memory.
        graph: Its compiled seven-node graph, run as a subgraph.
    """

    name: str
    description: str
    instructions: str
    resources: MemberResources
    graph: CompiledStateGraph[Any, Any, Any, Any]

    @property
    def spec(self) -> AgentSpec:
        """The member's own spec (not capped)."""
        return self.resources._spec

    async def run(
        self,
        goal: str,
        allowance: Allowance,
        config: RunnableConfig,
        *,
        graph: CompiledStateGraph[Any, Any, Any, Any] | None = None,
        failures: Mapping[str, int] | None = None,
    ) -> tuple[dict[str, Any], Counters, dict[str, int]]:
        """Run the member's graph (or ``graph``) on ``goal`` within ``allowance`` as a subgraph
        of the caller, whose ``config`` it runs under, starting from the team's ``failures``.

        Returns its final output values, counters, and the failures it added. A crash of the
        run is reported as a failed run (so the team can replan); an approval pause propagates
        to the team.
        """
        values: dict[str, Any] = {}
        counters = new_counters()
        seen = dict(failures or {})
        with self.resources.capped(allowance, seen):
            try:
                async for mode, chunk in (graph or self.graph).astream(
                    {"goal": goal}, config, stream_mode=["updates", "values"]
                ):
                    if mode == "values" and isinstance(chunk, dict):
                        values = chunk
                    elif mode == "updates" and isinstance(chunk, dict):
                        for update in chunk.values():
                            if isinstance(update, dict) and update.get("counters"):
                                counters = update["counters"]
                            if isinstance(update, dict) and "failure_counts" in update:
                                seen = dict(update["failure_counts"] or {})
            except GraphBubbleUp:
                raise  # An approval interrupt: the team pauses and resumes in here.
            except Exception as exc:
                values = {
                    **values,
                    "status": "failed",
                    "status_reason": f"the run stopped on an error: {type(exc).__name__}: {exc}",
                }
        before = failures or {}
        added = {key: n - before.get(key, 0) for key, n in seen.items() if n > before.get(key, 0)}
        return values, counters, added


def member_spec(spec: AgentSpec, name: str) -> AgentSpec:
    """Return the full spec of agent ``name``: the team's sections with the member's merged over.

    Raises:
        KeyError: if the team has no agent ``name``.
    """
    member = spec.agents[name]
    own = member.model_dump(exclude_unset=True, exclude={"description", "instructions"})
    base = spec.model_dump(exclude={"agents", "team"})
    return AgentSpec(**_merged(base, own))


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def member_goal(member: Member, task: str, context: str = "") -> str:
    """Return the goal a member gets: its instructions, the task, and what it should build on.

    ``context`` (earlier members' answers) is cut to fit the member's ``limits.max_goal_chars``.
    """
    head = f"{member.instructions.strip()}\n\nTask: {task}" if member.instructions.strip() else task
    if not context:
        return head
    room = member.spec.limits.max_goal_chars - len(head) - 2
    if len(context) > room:
        note = " [... cut to fit the goal]"
        context = context[: max(room - len(note), 0)] + note
    return f"{head}\n\n{context}"


def build_members(
    spec: AgentSpec,
    names: Sequence[str],
    *,
    lead: AgentResources,
    model: BaseChatModel | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    tools: Sequence[BaseTool] | ToolSet | None = None,
) -> dict[str, Member]:
    """Build the members ``names`` of the team ``spec``, over the team's resources ``lead``.

    Args:
        spec: The team spec (with ``agents``).
        names: The agents to build, in order.
        lead: The team's resources (shared model, tools and memory).
        model: A chat model for every member (for example a ``ScriptedChatModel``).
        models: Chat models by agent name, over ``model``.
        tools: LangChain tools or a ``ToolSet`` for every member instead of MCP servers.
    """
    members = {}
    for name in names:
        resources = MemberResources(
            member_spec(spec, name),
            name=name,
            lead=lead,
            model=(models or {}).get(name, model),
            tools=tools,
        )
        declared = spec.agents[name]
        members[name] = Member(
            name=name,
            description=declared.description,
            instructions=declared.instructions,
            resources=resources,
            graph=build_graph(resources=resources),
        )
    return members


def member_run(
    member: str, task: str, values: Mapping[str, Any], counters: Counters, **where: int
) -> MemberRun:
    """Return the record of a member run that ended with output ``values``."""
    status = values.get("status") or "failed"
    if status == "running":  # The graph ended without a verdict: a bug, reported, not hidden.
        status = "failed"
    return MemberRun(
        agent=member,
        task=task,
        status=status,
        reason=str(values.get("status_reason") or ""),
        answer=values.get("answer") if status == "done" else None,
        counters=counters,
        **where,  # type: ignore[typeddict-item]
    )
