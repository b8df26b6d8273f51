"""goalgraph's safety layer in front of another agent framework's tools, recording what it decides.

A peer agent (``goalgraph.eval.peers``) gets the same MCP tools as goalgraph, but every call of
them goes through a ``PolicyGate`` first, so that the comparison is fair on approval and refusal
tasks:

* the call is judged by ``goalgraph.safety.check_action`` with the task's ``safety`` section,
  ``limits.max_identical_calls`` and ``tools.http.allow_hosts``, the tool traits goalgraph's
  tool set declares, and a ledger of the run's calls (loop detection, budgets, rate limit);
* a call the policy would ask a human about is answered with the task's ``approval`` decision, as
  goalgraph's task runner answers goalgraph's interrupt; after ``MAX_APPROVALS`` answers the gate
  stops answering and the run ends ``awaiting_approval``, as goalgraph's runner gives up;
* a blocked call becomes an error the framework shows its model (``Blocked: <reason>``);
* an allowed call runs through goalgraph's ``ToolBox`` (timeouts, output normalisation), and its
  output is screened for prompt injection and its provenance checked exactly as goalgraph's act
  node does it (a flagged output is fenced as data; a flagged output, or any output from a source
  the spec does not trust, taints the run, and later write, exec and network calls are judged
  under that taint).

Every call is recorded as a ``CallRecord`` in the run's ``TaskRun``. The framework's own trace
announces each proposed call (``propose``); the gate fills in the verdict and the outcome when
the framework executes it. A call the framework rejected before it reached the tool (an unknown
tool, arguments its own validation refused) gets its verdict from the same checks goalgraph's
safety layer applies first (``settle``), so tool-call validity means what it means for goalgraph
(``goalgraph.eval.records``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from goalgraph.eval.records import INVALID_CALL_RULES, CallRecord, TaskRun
from goalgraph.hints import tool_hints
from goalgraph.injection import quote_observation, screen
from goalgraph.resources import ARTIFACTS_FOLDER, ToolSet
from goalgraph.risk import ToolTraits
from goalgraph.safety import (
    PolicyVerdict,
    RunLedger,
    call_signature,
    check_action,
    output_source,
    taint_of,
)
from goalgraph.spec import AgentSpec, SafetySpec
from goalgraph.state import ProposedAction

__all__ = ["FRAMEWORK", "GateOutcome", "PolicyGate", "RunStop"]

FRAMEWORK = "framework"
"""``CallRecord.by`` of a malformed call that never reached the gate (the peer framework refused
it, or the run ended before the framework ran it), judged by goalgraph's first checks instead."""
_OUTPUT_CHARS = 300
_MAX_CALL_TIMES = 100


@dataclass(frozen=True)
class RunStop:
    """Why the gate wants the run to end now (the driver stops the framework)."""

    status: Literal["stopped_limit", "awaiting_approval"]
    """The run's final status."""
    message: str
    """Why, in words (``time limit ...`` for the time limit, as goalgraph says it)."""


@dataclass(frozen=True)
class GateOutcome:
    """What the framework's tool returns: the text its model sees, and whether it is an error."""

    ok: bool
    """``False`` for a blocked call or a tool that failed: the framework shows an error."""
    text: str
    """The observation, or ``Blocked: <reason>`` / the tool's error."""


class PolicyGate:
    """The safety policy, approvals and tool execution a peer framework's tools delegate to.

    One gate serves one task run. Calls are executed one at a time, as goalgraph executes them.

    Example:
        ```python
        gate = PolicyGate(spec, toolset, traits, run, approval="deny", deadline=t0 + 300)
        gate.propose("calculator", {"expression": "6*7"})     # seen in the framework's trace
        outcome = await gate.call("calculator", {"expression": "6*7"})   # the framework runs it
        gate.settle()                                          # after the run
        ```
    """

    def __init__(
        self,
        spec: AgentSpec,
        toolset: ToolSet,
        traits: Mapping[str, ToolTraits],
        run: TaskRun,
        *,
        approval: Literal["approve", "deny"],
        deadline: float,
        max_approvals: int,
    ) -> None:
        """Serve the run ``run`` under ``spec`` until ``deadline`` (``time.perf_counter()``).

        Args:
            spec: The task run's agent spec (safety, limits, tool timeouts).
            toolset: The open tool set (goalgraph's ``ToolBox`` over the task's MCP servers).
            traits: Each tool's risk class, path/URL arguments and output source.
            run: The record calls are written to.
            approval: The task's answer to an approval request.
            deadline: When the run's time is up; later calls are refused and stop the run.
            max_approvals: Approval requests answered before the gate gives up on the run.
        """
        self.spec = spec
        self.toolset = toolset
        self.traits = dict(traits)
        self.run = run
        self.approval = approval
        self.deadline = deadline
        self.max_approvals = max_approvals
        self.stop: RunStop | None = None
        """Set when the run must end now (time up, approvals exhausted)."""
        self._schemas = toolset.schemas()
        self._hints = tool_hints(toolset.tools)
        self._reached: set[int] = set()
        self._call_counts: dict[str, int] = {}
        self._tool_counts: dict[str, int] = {}
        self._call_times: list[float] = []
        self._tainted_by: str | None = None
        self._lock = asyncio.Lock()
        self._malformed: set[int] = set()
        self._framework_errors: dict[int, str] = {}

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools the gate serves."""
        return list(self._schemas)

    def schema(self, tool: str) -> dict[str, Any]:
        """Return the JSON schema of ``tool``'s arguments.

        Raises:
            KeyError: If the gate serves no such tool.
        """
        return self._schemas[tool]

    def deadline_passed(self) -> bool:
        """Tell whether the run's time is up; sets ``stop`` when it is."""
        if time.perf_counter() < self.deadline:
            return False
        if self.stop is None:
            limit = self.spec.limits.max_seconds
            self.stop = RunStop("stopped_limit", f"time limit reached ({limit:g} s)")
        return True

    def propose(self, tool: str, args: Any) -> CallRecord:
        """Record a tool call the framework's model proposed (before it runs, if it ever does)."""
        record = CallRecord(tool=tool, args=dict(args) if isinstance(args, Mapping) else {})
        if not isinstance(args, Mapping):
            self._malformed.add(len(self.run.calls))
            record.reason = f"arguments are not a JSON object: {str(args)[:_OUTPUT_CHARS]}"
        self.run.calls.append(record)
        return record

    def note_framework_error(self, record: CallRecord, error: str) -> None:
        """Remember why the framework did not run a proposed call (``settle`` reports it)."""
        for index, call in enumerate(self.run.calls):
            if call is record:
                self._framework_errors[index] = error[:_OUTPUT_CHARS]

    async def call(self, tool: str, args: Mapping[str, Any]) -> GateOutcome:
        """Judge a call, ask for approval if needed, run it, and record all of it.

        Never raises for a tool problem: a blocked or failed call is an ``ok=False`` outcome.
        """
        async with self._lock:
            record = self._claim(tool, dict(args))
            if self.stop is not None or self.deadline_passed():
                assert self.stop is not None
                record.reason = f"not run: the run is ending ({self.stop.message})"
                return GateOutcome(False, f"Blocked: {record.reason}")
            verdict = self._judge(tool, dict(args))
            decision, by, reason = verdict.decision, "policy", verdict.reason
            if decision == "ask":
                self.run.approvals += 1
                record.approval_requested = True
                if self.run.approvals > self.max_approvals:
                    self.stop = RunStop(
                        "awaiting_approval",
                        f"the run asked for approval more than {self.max_approvals} times; "
                        "the task's approver stopped answering",
                    )
                    record.reason = verdict.reason
                    return GateOutcome(False, f"Blocked: {verdict.reason} (no answer)")
                approved = self.approval == "approve"
                decision, by = ("allow" if approved else "block"), "human"
                reason = (
                    "approved by a human"
                    if approved
                    else "denied by a human: the task's approver denies this call"
                )
            record.decision, record.rule, record.by, record.reason = (
                decision,
                verdict.rule,
                by,
                reason,
            )
            if decision == "block":
                return GateOutcome(False, f"Blocked: {reason}")
            if verdict.wait_s > 0:
                await asyncio.sleep(verdict.wait_s)  # the rate limit throttles, it does not refuse
            return await self._execute(record, tool, dict(args))

    def settle(self) -> None:
        """Give every proposed call that never reached the gate its verdict.

        A malformed call (an unknown tool, arguments that fail the tool's JSON schema, or are
        not an object) is blocked by rule ``unknown_tool`` / ``invalid_arguments``, by
        ``framework``: the first checks goalgraph's safety layer applies. Any other call (the
        framework refused it for its own reasons, or the run ended before it ran) keeps no
        verdict, with the framework's error as its reason when there was one.
        """
        permissive = SafetySpec()
        for index, record in enumerate(self.run.calls):
            if index in self._reached:
                continue
            if index in self._malformed:
                record.decision, record.rule, record.by = "block", "invalid_arguments", FRAMEWORK
                continue
            verdict = check_action(
                _action(record.tool, record.args),
                policy=permissive,
                schemas=self._schemas,
                ledger=RunLedger(),
                max_identical_calls=1 << 30,
                traits=self.traits,
                allow_hosts=["*"],
            )
            if verdict.rule in INVALID_CALL_RULES:
                record.decision, record.rule, record.by = "block", verdict.rule, FRAMEWORK
                record.reason = verdict.reason
            elif index in self._framework_errors and not record.reason:
                record.reason = f"the framework did not run it: {self._framework_errors[index]}"

    def _claim(self, tool: str, args: dict[str, Any]) -> CallRecord:
        """Return the earliest proposed, unclaimed record of this exact call (or a new one)."""
        signature = call_signature(tool, args)
        for index, record in enumerate(self.run.calls):
            if index not in self._reached and call_signature(record.tool, record.args) == signature:
                self._reached.add(index)
                return record
        record = self.propose(tool, args)
        self._reached.add(len(self.run.calls) - 1)
        return record

    def _judge(self, tool: str, args: dict[str, Any]) -> PolicyVerdict:
        return check_action(
            _action(tool, args),
            policy=self.spec.safety,
            schemas=self._schemas,
            ledger=RunLedger(
                call_counts=self._call_counts,
                tool_counts=self._tool_counts,
                call_times=self._call_times,
                tainted_by=self._tainted_by,
            ),
            max_identical_calls=self.spec.limits.max_identical_calls,
            traits=self.traits,
            allow_hosts=self.spec.tools.http.allow_hosts,
            goal=self.run.goal or None,
            hints=self._hints,
        )

    async def _execute(self, record: CallRecord, tool: str, args: dict[str, Any]) -> GateOutcome:
        timeout = self.spec.tools.timeouts.get(tool, self.spec.limits.tool_timeout_s)
        result = await self.toolset.call(tool, args, timeout_s=timeout)
        text = result.content if result.ok else result.error or "tool failed"
        flags = screen(result.content) if self.spec.safety.screen_observations else []
        shown = quote_observation(text, flags)
        record.ran, record.ok, record.output = True, result.ok, shown[:_OUTPUT_CHARS]
        signature = call_signature(tool, args, self.traits)
        self._call_counts[signature] = self._call_counts.get(signature, 0) + 1
        self._tool_counts[tool] = self._tool_counts.get(tool, 0) + 1
        self._call_times = [*self._call_times, time.time()][-_MAX_CALL_TIMES:]
        if self._tainted_by is None:
            source = output_source(self.traits.get(tool), args, saved_outputs=ARTIFACTS_FOLDER)
            call_id = str(next(i for i, call in enumerate(self.run.calls, 1) if call is record))
            self._tainted_by = taint_of(tool, call_id, source, flags, self.spec.safety)
        return GateOutcome(result.ok, shown)


def _action(tool: str, args: dict[str, Any]) -> ProposedAction:
    return ProposedAction(kind="tool", thought="", tool=tool, args=args, call_id="", text="")
