"""Teams: several named agents on one goal, each running goalgraph's seven-node graph as a LangGraph
subgraph of the team's graph.

Three patterns (``team.pattern`` in the spec): ``orchestrator`` (the team's model assigns plan steps
to specialists and replans when one fails), ``pipeline`` (stages in order, each building on the
previous answer) and ``debate`` (N agents over R rounds, a judge picks). The team's ``limits`` and
``safety.max_tool_calls`` are shared by all its members.
"""

from __future__ import annotations

from goalgraph.teams.api import Team, TeamResult
from goalgraph.teams.graph import build_team_graph, team_of
from goalgraph.teams.members import Member, build_members, member_spec
from goalgraph.teams.state import MemberRun, TeamBudget, TeamState, TeamStep

__all__ = [
    "Member",
    "MemberRun",
    "Team",
    "TeamBudget",
    "TeamResult",
    "TeamState",
    "TeamStep",
    "build_members",
    "build_team_graph",
    "member_spec",
    "team_of",
]
