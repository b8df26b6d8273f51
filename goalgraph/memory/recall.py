"""What the agent recalls before it plans, and what it keeps when a run ends.

Before planning, ``recall`` assembles the long-term part of the prompt under one token budget: the
user's profile, lessons from past runs with similar goals (Reflexion-style episodic memory), then
the facts and excerpts that bear on the goal. The short-term part (the recent message window and
the running summary) lives in the graph's state and is kept by the summarize_memory node.

When a run ends, ``remember_run`` keeps the goal, the plan, the outcome and the lessons drawn from
it, and stores the goal as a user turn so facts stated in goals ("I moved to Lyon; ...") are
learned. Lessons are drawn deterministically from the run's steps and blocks, so they cost no model
call and say only what happened.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from langchain_core.messages import ToolMessage

from goalgraph.memory.backend import MemoryBackend
from goalgraph.memory.retrieve import query_terms
from goalgraph.memory.types import (
    CountTokens,
    MemoryContext,
    RunRecord,
    StoredTurn,
    Turn,
    approx_tokens,
)

__all__ = ["RUNS_SESSION", "lessons_from_run", "recall", "remember_run", "run_record"]

log = logging.getLogger(__name__)

RUNS_SESSION = "agent-goals"
"""The session that holds the goals users gave the agent, one turn per distinct goal."""
SIMILAR_RUNS = 3
"""Past runs whose lessons are recalled."""


def recall(
    memory: MemoryBackend,
    goal: str,
    *,
    budget_tokens: int,
    count_tokens: CountTokens = approx_tokens,
    user_id: str = "default",
) -> str:
    """Return what memory holds that bears on ``goal``, as prompt text within ``budget_tokens``.

    Sections, in order, each only when non-empty: the profile, lessons from similar past runs,
    then facts and excerpts found by searching for the goal, which get whatever budget is left.
    """
    if budget_tokens <= 0:
        return ""
    sections: list[str] = []
    profile = memory.get_profile(user_id)
    if profile:
        sections.append("About the user: " + "; ".join(f"{k}: {v}" for k, v in profile.items()))
    lessons = _unique(
        lesson for run in memory.similar_runs(goal, limit=SIMILAR_RUNS) for lesson in run.lessons
    )
    if lessons:
        sections.append("Lessons from similar past goals:\n" + "\n".join(f"- {x}" for x in lessons))
    sections = _fit(sections, budget_tokens, count_tokens)
    left = budget_tokens - (count_tokens("\n\n".join(sections)) + 2 if sections else 0)
    if left > 16:
        found = _without_unrelated_goals(
            memory.search(goal, budget_tokens=left), goal, count_tokens
        )
        if found:
            sections.append(found.render())
    return "\n\n".join(sections)


def _without_unrelated_goals(
    found: MemoryContext, goal: str, count_tokens: CountTokens
) -> MemoryContext:
    """Drop the past goals (``RUNS_SESSION`` turns) that are this goal again or share no content
    word with it.

    Past goals follow one another without being related, so a goal found only as the neighbour
    of another, or by a loose embedding match, is noise that a small planner copies into its
    plan as steps ("write hi"); the facts stated in past goals are still found as facts, and a
    past goal that names what this one asks about is kept.
    """
    words = set(query_terms(goal))
    same = " ".join(goal.lower().split())

    def related(turn: StoredTurn) -> bool:
        if turn.session_id != RUNS_SESSION:
            return True
        text = " ".join(turn.text.lower().split())
        return text != same and bool(words & set(query_terms(turn.text)))

    turns = tuple(turn for turn in found.turns if related(turn))
    if len(turns) == len(found.turns):
        return found
    kept = replace(found, turns=turns)
    return replace(kept, tokens=count_tokens(kept.render()))


def _fit(sections: list[str], budget: int, count_tokens: CountTokens) -> list[str]:
    """Drop lines from the end until ``sections`` fit ``budget``."""
    lines = "\n\n".join(sections).split("\n")
    while lines and count_tokens("\n".join(lines)) > budget:
        lines.pop()
    text = "\n".join(lines).strip()
    return [text] if text else []


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def lessons_from_run(state: Mapping[str, Any]) -> tuple[str, ...]:
    """Draw lessons from a finished run: what failed and why, what worked after failing, and what
    was blocked."""
    lessons: list[str] = []
    plan: Sequence[Mapping[str, Any]] = state.get("plan") or []
    status = state.get("status", "")
    messages = state.get("messages") or []
    last_error = {
        message.name: str(message.content).removeprefix("Error: ")
        for message in messages
        if isinstance(message, ToolMessage) and message.status == "error"
    }
    for step in plan:
        tool = step.get("tool") or "no tool"
        # A step that simply succeeded teaches nothing we can trust: "done" only means its tool
        # did not fail, and recalling it as a lesson would reinforce a wrong plan. Recovery after
        # failures, failures and blocks are what the next run should know (as in Reflexion).
        if step.get("status") == "done" and step.get("attempts"):
            lessons.append(
                f"'{step['description']}' worked with {tool} after {step['attempts']} failed tries."
            )
        elif step.get("status") == "failed":
            why = (step.get("result") or last_error.get(step.get("tool")) or "").strip()[:160]
            lessons.append(f"'{step['description']}' failed with {tool}: {why}".rstrip(": ") + ".")
    for message in messages:
        text = str(message.content)
        if isinstance(message, ToolMessage) and text.startswith("Blocked:"):
            lessons.append(f"{message.name or 'A tool'} was blocked: {text[8:].strip()[:160]}")
    if status not in {"done", "running", ""}:
        reason = str(state.get("status_reason") or "").strip()[:160]
        lessons.append(f"The run ended {status}: {reason}".rstrip(": ") + ".")
    return tuple(_unique(lessons))


def run_record(state: Mapping[str, Any], thread_id: str) -> RunRecord:
    """Describe a finished run for episodic memory."""
    plan = state.get("plan") or []
    answer = state.get("answer") or state.get("status_reason") or ""
    return RunRecord(
        goal=str(state.get("goal") or ""),
        status=str(state.get("status") or ""),
        answer=str(answer)[:2000],
        plan=tuple(f"{step['description']} ({step.get('tool') or 'no tool'})" for step in plan),
        lessons=lessons_from_run(state),
        thread_id=thread_id,
    )


def remember_run(memory: MemoryBackend, state: Mapping[str, Any], thread_id: str) -> None:
    """Keep a finished run: its record, and its goal as a user turn (learned from once)."""
    record = run_record(state, thread_id)
    if not record.goal.strip():
        return
    memory.record_run(record)
    # One turn per distinct goal: the same goal asked again adds nothing, so recall stays stable.
    digest = hashlib.sha256(record.goal.encode()).hexdigest()[:16]
    memory.add_episode(
        [Turn(record.goal, speaker="user", id=f"goal-{digest}")],
        session_id=RUNS_SESSION,
        source="message",
    )
