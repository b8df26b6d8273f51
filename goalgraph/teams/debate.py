"""The debate pattern: N agents answer over R rounds, seeing each other's answers; a judge picks.

```
START → open → debater 1 ┐
             → debater 2 ┼→ next_round ─ rounds left → debaters again
             → ...       ┘             └ last round → <judge> → END
```

The debaters of a round run at the same time, each as its own subgraph, and split what is left of
the team's budget evenly. From the second round on, each sees every debater's previous answer. The
judge's model then picks one answer under a grammar (an enum of the debaters); when it cannot, the
most common answer wins, ties going to the debater listed first.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Overwrite

from goalgraph.resources import AgentResources
from goalgraph.teams.budget import TeamLimits
from goalgraph.teams.common import check_goal, run_in_team, timed, used_budget
from goalgraph.teams.members import Member
from goalgraph.teams.state import MemberRun, TeamBudget, TeamInput, TeamOutput, TeamState, no_budget

__all__ = [
    "JUDGE_INSTRUCTIONS",
    "add_debate_nodes",
    "latest_answers",
    "majority",
    "verdict_schema",
]

log = logging.getLogger(__name__)

JUDGE_INSTRUCTIONS = """You judge a debate. Read the goal and each agent's answer.
Pick the agent whose answer reaches the goal best, and say why in one sentence."""


def verdict_schema(names: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema of the judge's verdict: one of ``names`` and a short reason."""
    return {
        "title": "Verdict",
        "description": "The debater whose answer is best, and why.",
        "type": "object",
        "properties": {
            "winner": {"type": "string", "enum": list(names)},
            "reason": {"type": "string", "maxLength": 200},
        },
        "required": ["winner", "reason"],
        "additionalProperties": False,
    }


def latest_answers(runs: Sequence[MemberRun], debaters: Sequence[str]) -> dict[str, str]:
    """Return each debater's latest answer (from the latest round it answered in), in order."""
    answers: dict[str, tuple[int, str]] = {}
    for run in runs:
        if run["status"] == "done" and run["answer"] is not None and run["agent"] in debaters:
            round_ = run.get("round", 0)
            if run["agent"] not in answers or answers[run["agent"]][0] <= round_:
                answers[run["agent"]] = (round_, run["answer"])
    return {name: answers[name][1] for name in debaters if name in answers}


def majority(answers: Mapping[str, str]) -> str:
    """Return the debater whose answer is the most common (case and spacing aside); ties go to
    the debater listed first."""
    keys = {name: " ".join(answer.lower().split()) for name, answer in answers.items()}
    counts = Counter(keys.values())
    return max(answers, key=lambda name: counts[keys[name]])  # max keeps the first of a tie


def _previous_round(state: TeamState, round_: int) -> str:
    answers = [
        run
        for run in state.get("runs") or []
        if run.get("round") == round_ - 1 and run["status"] == "done"
    ]
    if not answers:
        return ""
    lines = "\n".join(f"- {run['agent']}: {run['answer']}" for run in answers)
    return f"Answers in round {round_ - 1}:\n{lines}\nGive your best answer now."


def add_debate_nodes(
    builder: StateGraph[TeamState, Any, TeamInput, TeamOutput],
    *,
    lead: AgentResources,
    debaters: Mapping[str, Member],
    judge: Member,
    rounds: int,
    limits: TeamLimits,
) -> None:
    """Add ``open``, the debaters, ``next_round`` and the judge to ``builder``."""
    names = list(debaters)

    async def open_(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Start a fresh debate at round 1."""
        fresh: dict[str, Any] = {
            "status": "running",
            "status_reason": "",
            "answer": None,
            "winner": None,
            "round": 1,
            "runs": Overwrite([]),
            "budget": Overwrite(no_budget()),
        }
        problem = check_goal(state, lead.spec.limits.max_goal_chars)
        if problem:
            return {**fresh, "status": "failed", "status_reason": problem}
        return fresh

    def debater(member: Member) -> Any:
        async def answer(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
            """Run this debater as a subgraph on the goal and the previous round's answers."""
            round_ = state.get("round") or 1
            run, used = await run_in_team(
                member,
                member.graph,
                state["goal"],
                state,
                limits,
                config,
                context=_previous_round(state, round_),
                share=len(names),
                round=round_,
            )
            return {"runs": [run], "budget": used}

        answer.__name__ = member.name
        return answer

    def route_open(state: TeamState) -> list[str] | str:
        return names if state.get("status", "running") == "running" else judge.name

    async def next_round(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Start the next round while rounds and budget are left."""
        round_ = state.get("round") or 1
        if round_ < rounds and not limits.spent(used_budget(state)):
            return {"round": round_ + 1}
        return {}

    def route_round(state: TeamState) -> list[str] | str:
        answered = max((run.get("round", 0) for run in state.get("runs") or []), default=0)
        return names if (state.get("round") or 1) > answered else judge.name

    async def judge_node(state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Pick the best of the debaters' latest answers."""
        if state.get("status", "running") != "running":
            return {}
        answers = latest_answers(state.get("runs") or [], names)
        if not answers:
            reasons = "; ".join(
                f"{run['agent']}: {run['status']} ({run['reason']})"
                for run in state.get("runs") or []
            )
            return {"status": "failed", "status_reason": f"no debater answered: {reasons}"}
        winner, why, spend = await _pick(state, answers)
        return {
            "budget": spend,
            "status": "done",
            "status_reason": f"{judge.name} picked {winner}: {why}",
            "answer": answers[winner],
            "winner": winner,
        }

    async def _pick(state: TeamState, answers: Mapping[str, str]) -> tuple[str, str, TeamBudget]:
        if len(answers) == 1:
            only = next(iter(answers))
            return only, "the only answer", no_budget()
        spent = limits.spent(used_budget(state))
        if spent:
            return majority(answers), f"the most common answer ({spent})", no_budget()
        listed = "\n".join(f"- {name}: {answer}" for name, answer in answers.items())
        system = JUDGE_INSTRUCTIONS
        if judge.instructions.strip():
            system = f"{judge.instructions.strip()}\n{system}"
        prompt = [SystemMessage(system), HumanMessage(f"Goal: {state['goal']}\nAnswers:\n{listed}")]
        spend = TeamBudget(**{**no_budget(), "steps": 1})
        try:
            model = await judge.resources.achat_model()
            verdict: Any = await model.with_structured_output(
                verdict_schema(list(answers))
            ).ainvoke(prompt)
            winner = verdict.get("winner") if isinstance(verdict, dict) else None
            if winner not in answers:
                raise ValueError(f"the verdict names no debater: {verdict!r}")
            return str(winner), str(verdict.get("reason") or "").strip() or "no reason", spend
        except Exception as exc:  # An unusable verdict falls back to the majority, not a crash.
            log.warning("judge %s failed (%s); taking the most common answer", judge.name, exc)
            return majority(answers), f"the most common answer (the judge failed: {exc})", spend

    judge_node.__name__ = judge.name
    builder.add_node("open", open_)
    for name, member in debaters.items():
        builder.add_node(name, debater(member))
    builder.add_node("next_round", next_round)
    builder.add_node(judge.name, cast(Any, timed(judge_node)))
    builder.add_edge(START, "open")
    builder.add_conditional_edges("open", route_open, [*names, judge.name])
    builder.add_edge(names, "next_round")
    builder.add_conditional_edges("next_round", route_round, [*names, judge.name])
    builder.add_edge(judge.name, END)
