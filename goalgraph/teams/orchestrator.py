"""The orchestrator pattern: the team's model splits the goal into steps for its specialists.

```
START → plan → <specialist of step 1> → <specialist of step 2> → ... → finish → END
                        └─ a step failed → replan → <specialist of the next step> ...
```

Each specialist node runs that agent's seven-node graph as a subgraph on its step, with the
earlier steps' results; its answer becomes the step's result. A failed step sends the team to
``replan`` (bounded by ``limits.max_replans``), which assigns the rest of the goal anew; an
assignment that already failed is not handed out again unchanged (the team's loop check).
Each assignment is fitted to the members' tools (``goalgraph.teams.fit``): a step whose words cue
a tool its member is not offered goes to a member that is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Overwrite

from goalgraph.hints import tool_hints
from goalgraph.plan import MAX_PLAN_STEPS, plan_schema, steps_from_output
from goalgraph.resources import AgentResources
from goalgraph.teams.budget import TeamLimits
from goalgraph.teams.common import check_goal, run_in_team, timed, used_budget
from goalgraph.teams.fit import fit_steps
from goalgraph.teams.members import Member
from goalgraph.teams.state import (
    TeamBudget,
    TeamInput,
    TeamOutput,
    TeamState,
    TeamStep,
    add_budget,
    no_budget,
)

__all__ = [
    "ASSIGN_INSTRUCTIONS",
    "REASSIGN_INSTRUCTIONS",
    "add_orchestrator_nodes",
    "assign_steps",
    "route_after_step",
]

log = logging.getLogger(__name__)

ASSIGN_INSTRUCTIONS = """You lead a team of agents. Split the goal into 1 to {max_steps} steps.
Give each step to the agent that does it best (in the tool field). Use the fewest steps.
Agents:
{agents}"""

REASSIGN_INSTRUCTIONS = """You lead a team of agents. A step failed; the reason is below.
Write new steps for the rest of the goal and give each to an agent (in the tool field).
Do not give the failed step to the same agent again unchanged.
Agents:
{agents}"""


def _catalog(members: Mapping[str, Member]) -> str:
    return "\n".join(
        f"- {name}: {member.description or member.instructions or 'a general agent'}"
        for name, member in members.items()
    )


def assign_steps(
    output: Any, *, names: Sequence[str], first_id: int, default: str
) -> list[TeamStep]:
    """Turn the planner's output into team steps; a step naming no known agent goes to
    ``default``.

    Raises:
        ValueError: if the output holds no usable step.
    """
    steps = steps_from_output(output, first_id=first_id, tool_names=names)
    return [
        TeamStep(
            id=step["id"],
            description=step["description"],
            agent=step["tool"] or default,
            status="pending",
            result=None,
        )
        for step in steps
    ]


def _next_pending(plan: Sequence[TeamStep]) -> int | None:
    return next((step["id"] for step in plan if step["status"] == "pending"), None)


def _results_so_far(plan: Sequence[TeamStep]) -> str:
    done = [step for step in plan if step["status"] == "done"]
    if not done:
        return ""
    return "Results of earlier steps:\n" + "\n".join(
        f"- {step['description']} ({step['agent']}): {step['result']}" for step in done
    )


def route_after_step(state: TeamState) -> str:
    """After ``plan``, ``replan`` or a specialist: the current step's specialist, ``replan`` when
    the latest finished step failed, else ``finish``."""
    if state.get("status", "running") != "running":
        return "finish"
    plan = state.get("plan") or []
    current = state.get("current_step")
    step = next((s for s in plan if s["id"] == current), None)
    if step is not None:
        return step["agent"]
    finished = [s for s in plan if s["status"] in ("done", "failed")]
    # Steps run in id order (a replan's steps get higher ids), so the highest is the latest.
    if finished and max(finished, key=lambda s: s["id"])["status"] == "failed":
        return "replan"
    return "finish"


def add_orchestrator_nodes(
    builder: StateGraph[TeamState, Any, TeamInput, TeamOutput],
    *,
    lead: AgentResources,
    members: Mapping[str, Member],
    limits: TeamLimits,
) -> None:
    """Add the orchestrator's nodes and edges to ``builder``."""
    names = list(members)
    default = names[0]

    async def ask_planner(
        prompt: list[BaseMessage], first_id: int, goal: str, *, add_cued: bool = False
    ) -> list[TeamStep]:
        model: BaseChatModel = await lead.achat_model()
        planner = model.with_structured_output(plan_schema(names, max_steps=MAX_PLAN_STEPS))
        output = await planner.ainvoke(prompt)
        steps = assign_steps(output, names=names, first_id=first_id, default=default)
        offered = {name: await member.resources.toolset() for name, member in members.items()}
        tools_of = {name: [tool.name for tool in tools.tools] for name, tools in offered.items()}
        hints = tool_hints(tool for tools in offered.values() for tool in tools.tools)
        return fit_steps(steps, goal, tools_of, hints, add_cued=add_cued)

    async def plan(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Split the goal into steps, each assigned to a specialist."""
        used = TeamBudget(**{**no_budget(), "steps": 1})
        fresh: dict[str, Any] = {
            "status": "running",
            "status_reason": "",
            "answer": None,
            "runs": Overwrite([]),
            "budget": Overwrite(used),
            "plan": [],
            "current_step": None,
        }
        problem = check_goal(state, lead.spec.limits.max_goal_chars)
        if problem:
            return {**fresh, "status": "failed", "status_reason": problem}
        prompt = [
            SystemMessage(
                ASSIGN_INSTRUCTIONS.format(max_steps=MAX_PLAN_STEPS, agents=_catalog(members))
            ),
            HumanMessage(f"Goal: {state['goal']}"),
        ]
        try:
            cued = (await lead.aprofile()).cued_steps
            steps = await ask_planner(prompt, first_id=1, goal=state["goal"], add_cued=cued)
        except Exception as exc:  # Degrade to one step for the first specialist, never crash.
            log.warning("team planner failed (%s); giving the whole goal to %s", exc, default)
            steps = [
                TeamStep(
                    id=1, description=state["goal"], agent=default, status="pending", result=None
                )
            ]
        return {**fresh, "plan": steps, "current_step": steps[0]["id"]}

    async def replan(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Assign the rest of the goal anew after a failed step, within ``limits.max_replans``."""
        used = used_budget(state)
        plan = list(state.get("plan") or [])
        failed = [step for step in plan if step["status"] == "failed"][-1]
        why = f"{failed['agent']} failed step {failed['id']} ({failed['description']}): " + str(
            failed["result"]
        )
        spent = limits.spent(used)
        if spent:
            return {"status": "stopped_limit", "status_reason": f"{why}; {spent}"}
        if used["replans"] >= limits.max_replans:
            return {
                "status": "failed",
                "status_reason": f"{why}; no replans left (limits.max_replans)",
            }
        done = "\n".join(
            f"- {step['description']} ({step['agent']}): {step['result']}"
            for step in plan
            if step["status"] == "done"
        )
        prompt = [
            SystemMessage(REASSIGN_INSTRUCTIONS.format(agents=_catalog(members))),
            HumanMessage(
                f"Goal: {state['goal']}\nDone:\n{done or '- nothing yet'}\n"
                f"Failed: {failed['description']} ({failed['agent']}): {failed['result']}"
            ),
        ]
        spend = TeamBudget(**{**no_budget(), "steps": 1, "replans": 1})
        first_id = max(step["id"] for step in plan) + 1
        try:
            new_steps = await ask_planner(prompt, first_id=first_id, goal=state["goal"])
        except Exception as exc:
            return {
                "budget": spend,
                "status": "failed",
                "status_reason": f"{why}; replanning failed: {type(exc).__name__}: {exc}",
            }
        tried = {(s["agent"], s["description"]) for s in plan if s["status"] == "failed"}
        fresh = [s for s in new_steps if (s["agent"], s["description"]) not in tried]
        if not fresh:
            return {
                "budget": spend,
                "status": "failed",
                "status_reason": (
                    f"no progress: the replan only handed out again what failed ({why})"
                ),
            }
        kept = [
            step if step["status"] != "pending" else TeamStep(**{**step, "status": "skipped"})
            for step in plan
        ]
        return {"budget": spend, "plan": [*kept, *fresh], "current_step": fresh[0]["id"]}

    def specialist(member: Member) -> Any:
        async def run_step(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
            """Run the current step's specialist as a subgraph; its answer is the step's result."""
            plan = list(state.get("plan") or [])
            step = next(s for s in plan if s["id"] == state.get("current_step"))
            run, used = await run_in_team(
                member,
                member.graph,
                step["description"],
                state,
                limits,
                config,
                context=_results_so_far(plan),
                step=step["id"],
            )
            ok = run["status"] == "done"
            finished = TeamStep(
                **{
                    **step,
                    "status": "done" if ok else "failed",
                    "result": run["answer"] if ok else f"{run['status']}: {run['reason']}",
                }
            )
            plan = [finished if s["id"] == step["id"] else s for s in plan]
            update: dict[str, Any] = {
                "runs": [run],
                "budget": used,
                "plan": plan,
                "current_step": _next_pending(plan) if ok else None,
            }
            spent = limits.spent(add_budget(used_budget(state), used))
            if spent and not ok:
                update["status"] = "stopped_limit"
                update["status_reason"] = f"{member.name} stopped: {run['reason']}"
            return update

        run_step.__name__ = member.name
        return run_step

    async def finish(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """End the run: the last step's result is the team's answer once every step is done."""
        if state.get("status", "running") != "running":
            return {}
        plan = state.get("plan") or []
        done = [step for step in plan if step["status"] == "done"]
        if not done:
            return {"status": "failed", "status_reason": "no step was completed"}
        return {
            "status": "done",
            "status_reason": f"{len(done)} step(s) done by the team",
            "answer": done[-1]["result"],
        }

    targets = [*names, "replan", "finish"]
    builder.add_node("plan", cast(Any, timed(plan)))
    builder.add_node("replan", cast(Any, timed(replan)))
    for name, member in members.items():
        builder.add_node(name, specialist(member))
        builder.add_conditional_edges(name, route_after_step, targets)
    builder.add_node("finish", finish)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route_after_step, targets)
    builder.add_conditional_edges("replan", route_after_step, targets)
    builder.add_edge("finish", END)
