"""The pipeline pattern: stages run in order, each building on the previous stage's answer.

```
START → <stage 1> → <stage 2> → ... → finish → END
              └─ a stage did not finish ──────↗
```

Every stage gets the team's goal as its task and, from the second on, the previous stage's answer
as its input; its own ``instructions`` say what to do with them (research, write, review). The last
stage's answer is the team's. A stage that fails or runs out of budget ends the pipeline with its
reason: a later stage has nothing to build on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Overwrite

from goalgraph.resources import AgentResources
from goalgraph.teams.budget import TeamLimits
from goalgraph.teams.common import check_goal, run_in_team, used_budget
from goalgraph.teams.members import Member
from goalgraph.teams.state import TeamInput, TeamOutput, TeamState, add_budget, no_budget

__all__ = ["add_pipeline_nodes", "stage_input"]


def stage_input(state: TeamState) -> str:
    """Return what the next stage builds on: the previous stage's answer."""
    runs = state.get("runs") or []
    if not runs:
        return ""
    previous = runs[-1]
    return f"Input from {previous['agent']}:\n{previous['answer']}"


def add_pipeline_nodes(
    builder: StateGraph[TeamState, Any, TeamInput, TeamOutput],
    *,
    lead: AgentResources,
    members: Mapping[str, Member],
    limits: TeamLimits,
) -> None:
    """Add the pipeline's stages (``members``, in order) and ``finish`` to ``builder``."""
    stages = list(members)

    def stage(index: int, member: Member) -> Any:
        first = index == 0

        async def run_stage(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
            """Run this stage's agent as a subgraph on the goal and the previous answer."""
            update: dict[str, Any] = {}
            if first:  # A new run of the thread starts from nothing.
                update = {"status": "running", "status_reason": "", "answer": None}
                problem = check_goal(state, lead.spec.limits.max_goal_chars)
                if problem:
                    return {
                        **update,
                        "runs": Overwrite([]),
                        "budget": Overwrite(no_budget()),
                        "status": "failed",
                        "status_reason": problem,
                    }
            run, used = await run_in_team(
                member,
                member.graph,
                state["goal"],
                state,
                limits,
                config,
                context="" if first else stage_input(state),
                used=no_budget() if first else None,
                step=index + 1,
            )
            update["runs"] = Overwrite([run]) if first else [run]
            update["budget"] = Overwrite(used) if first else used
            if run["status"] != "done":
                # stopped_limit is the team's verdict only when the team's budget is spent; a stage
                # that hit its own limit failed the pipeline.
                spent = limits.spent(add_budget(None if first else used_budget(state), used))
                update["status"] = "stopped_limit" if spent else "failed"
                update["status_reason"] = (
                    f"stage {member.name} ended {run['status']}: {spent or run['reason']}"
                )
            return update

        run_stage.__name__ = member.name
        return run_stage

    def after(index: int) -> Any:
        following = stages[index + 1] if index + 1 < len(stages) else "finish"

        def route(state: TeamState) -> str:
            return following if state.get("status", "running") == "running" else "finish"

        return route

    async def finish(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """End the run: the last stage's answer is the team's."""
        if state.get("status", "running") != "running":
            return {}
        runs = state.get("runs") or []
        return {
            "status": "done",
            "status_reason": f"all {len(stages)} stages done",
            "answer": runs[-1]["answer"],
        }

    for index, name in enumerate(stages):
        builder.add_node(name, stage(index, members[name]))
        following = stages[index + 1] if index + 1 < len(stages) else "finish"
        builder.add_conditional_edges(name, after(index), sorted({following, "finish"}))
    builder.add_node("finish", finish)
    builder.add_edge(START, stages[0])
    builder.add_edge("finish", END)
