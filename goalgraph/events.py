"""Typed progress events derived from the graph's per-node updates, for the API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from goalgraph.plan import render_plan
from goalgraph.state import turn_actions, turn_verdicts

__all__ = ["AgentEvent", "events_from_update"]

EventKind = Literal[
    "plan",
    "thought",
    "tool_call",
    "decision",
    "verdict",
    "observation",
    "step",
    "replan",
    "approval",
    "note",
    "end",
]


@dataclass(frozen=True)
class AgentEvent:
    """One thing that happened in a run.

    Attributes:
        kind: What happened: ``plan``, ``thought``, ``tool_call``, ``decision`` (step_done or
            final_answer), ``verdict``, ``observation``, ``step`` (a step finished),
            ``replan``, ``approval`` (the run waits for a human), ``note`` (a failed model turn)
            or ``end``.
        node: The graph node that produced it.
        data: The details (JSON-serialisable).
        agent: In a team run, the agent that acted (``""`` for the team's own nodes and for a
            single agent).
    """

    kind: EventKind
    node: str
    data: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    """The ``RunResult`` on the ``end`` event."""
    agent: str = ""

    def describe(self) -> str:
        """Return a one-line (plans: multi-line) human-readable description; in a team run,
        prefixed with the acting agent's name in brackets."""
        text = self._describe()
        return f"[{self.agent}] {text}" if self.agent else text

    def _describe(self) -> str:
        d = self.data
        if self.kind in ("plan", "replan"):
            return f"{self.kind}:\n{render_plan(d['plan'], d.get('current_step'))}"
        if self.kind == "thought":
            return f"thought: {d['thought']}"
        if self.kind == "tool_call":
            call = f"tool call: {d['tool']}({json.dumps(d['args'], ensure_ascii=False)})"
            if d.get("left_out"):
                call += f" (left out: {json.dumps(d['left_out'], ensure_ascii=False)})"
            return call
        if self.kind == "decision":
            return f"{d['action']}: {d['text']}"
        if self.kind == "verdict":
            return f"verdict: {d['decision']} ({d['by']}) - {d['reason']}"
        if self.kind == "observation":
            mark = "ok" if d["ok"] else "error"
            return f"observation [{mark}, {d['elapsed_s']:.2f}s]: {d['content'][:300]}"
        if self.kind == "step":
            return f"step {d['id']} {d['status']}: {d['description']}"
        if self.kind == "note":
            return f"note: {d['text']}"
        if self.kind == "approval":
            return f"approval needed: {d['tool']}({json.dumps(d['args'], ensure_ascii=False)})"
        return f"end: {d.get('status')} - {d.get('message')}"

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-serialisable dict (with ``agent`` in a team run)."""
        event = {"kind": self.kind, "node": self.node, "data": self.data}
        return {**event, "agent": self.agent} if self.agent else event


def events_from_update(
    node: str, update: dict[str, Any], previous_plan: list[Any]
) -> list[AgentEvent]:
    """Translate one node's state update into events (``previous_plan`` detects finished steps)."""
    events: list[AgentEvent] = []
    if node in ("plan", "replan") and update.get("plan"):
        events.append(
            AgentEvent(
                "plan" if node == "plan" else "replan",
                node,
                {"plan": update["plan"], "current_step": update.get("current_step")},
            )
        )
    action = update.get("proposed_action") if node == "think" else None
    if action:
        if action["thought"]:
            events.append(AgentEvent("thought", node, {"thought": action["thought"]}))
        if action["kind"] == "tool":
            left_out = _left_out_by_call(update)
            events.extend(
                AgentEvent(
                    "tool_call",
                    node,
                    {"tool": a["tool"], "args": a["args"], **left_out.get(index, {})},
                )
                for index, a in enumerate(turn_actions(update))
            )
        else:
            events.append(
                AgentEvent("decision", node, {"action": action["kind"], "text": action["text"]})
            )
    if node == "think" and not action and update.get("feedback"):
        events.append(AgentEvent("note", node, {"text": update["feedback"]}))
    if node == "safety_check" and update.get("verdict"):
        events.extend(
            AgentEvent("verdict", node, dict(verdict))
            for verdict in turn_verdicts(update)
            if verdict
        )
    if node == "act":
        events.extend(
            AgentEvent("observation", node, dict(o)) for o in update.get("observations", [])
        )
    if node == "reflect" and update.get("plan"):
        before = {step["id"]: step["status"] for step in previous_plan}
        for step in update["plan"]:
            if step["status"] != before.get(step["id"]) and step["status"] != "pending":
                events.append(AgentEvent("step", node, dict(step)))
    return events


def _left_out_by_call(update: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Return, by call index, the optional arguments the think node left out of the turn's
    calls (``drop_invented_optional``), as ``{"left_out": {name: value}}``."""
    messages = update.get("messages") or []
    meta = (getattr(messages[0], "response_metadata", None) or {}) if messages else {}
    return {
        int(entry.get("call", 0)): {"left_out": dict(entry["arguments"])}
        for entry in meta.get("left_out_arguments") or []
    }
