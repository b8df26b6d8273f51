"""The deterministic safety policy applied to every proposed tool call.

``check_action`` is a pure function: the same action, policy and history always give the same
verdict, which makes the policy testable without a graph and reproducible after a resume.

``taint_of`` decides whether a tool's output taints the run: by where it came from (a source the
spec does not trust), or because the injection screen flagged it. The protection does not depend
on recognising an attack; the screen is a second signal.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from goalgraph.copied_examples import copied_example
from goalgraph.cues import asks_only_questions, prohibitions
from goalgraph.hints import ToolHints
from goalgraph.risk import ToolTraits
from goalgraph.spec import RiskClass, SafetySpec, Source
from goalgraph.state import ProposedAction
from goalgraph.tools.web import Allowlist, WebError, check_url
from goalgraph.tools.workspace_paths import (
    PathRefused,
    normalise_path,
    normalise_path_args,
    path_problem,
)

__all__ = [
    "RATE_WINDOW_S",
    "Decision",
    "PolicyVerdict",
    "Rule",
    "RunLedger",
    "call_signature",
    "check_action",
    "done_changes",
    "human_decision",
    "output_source",
    "reads_since_change",
    "taint_of",
    "unchanged_reads",
]


Rule = Literal[
    "unknown_tool",
    "denied",
    "not_allowed",
    "invalid_arguments",
    "copied_example",
    "path_escape",
    "host_not_allowed",
    "loop",
    "repeat",
    "budget",
    "tainted",
    "unasked_write",
    "forbidden_by_goal",
    "approval",
    "allowed",
]
"""Which check decided a verdict."""

Decision = Literal["allow", "block", "ask"]
"""``ask`` means a human decides."""

RATE_WINDOW_S = 60.0
"""The rate limit's window: ``max_calls_per_minute`` calls per this many seconds."""
_RISKY: frozenset[str] = frozenset({"write", "exec", "network"})
_UNKNOWN = ToolTraits("exec")


@dataclass(frozen=True)
class PolicyVerdict:
    """The policy's answer: run it, refuse it, or ask a human."""

    decision: Decision
    """``ask`` means the tool needs human approval before it runs."""
    reason: str
    """Why, in one sentence."""
    rule: Rule = "allowed"
    """The check that decided."""
    risk: RiskClass | None = None
    """The tool's risk class (``None`` for an unknown tool)."""
    wait_s: float = 0.0
    """Seconds to wait before running the call (the rate limit)."""


@dataclass(frozen=True)
class RunLedger:
    """What this run has done so far, as far as the policy cares."""

    call_counts: Mapping[str, int] = field(default_factory=dict)
    """Runs of each exact call (``call_signature``)."""
    tool_counts: Mapping[str, int] = field(default_factory=dict)
    """Runs of each tool."""
    call_times: Sequence[float] = ()
    """Wall-clock times (``time.time()``) of the most recent calls."""
    tainted_by: str | None = None
    """Set once the run read untrusted content (``taint_of``): which call, and why."""
    unchanged_reads: Mapping[str, str] = field(default_factory=dict)
    """Read-only calls of the current step's planned tool that succeeded with nothing but reads
    run since (``call_signature`` to their output): proposing one again for this step copies an
    earlier step's call, which could only return the same."""
    seen_text: str | None = None
    """The goal and every tool result of the run so far, for the copied-example check
    (``goalgraph.copied_examples``, the ``refuse_copied_examples`` profile rule); ``None``: the
    check is off."""
    done_changes: Mapping[str, str] = field(default_factory=dict)
    """Calls of ``write`` tools that succeeded in this run (``call_signature`` to their output):
    running one again would make the same change twice (``SafetySpec.block_repeated_changes``)."""


def call_signature(
    tool: str, args: Mapping[str, Any], traits: Mapping[str, ToolTraits] | None = None
) -> str:
    """Return a canonical key for a tool call: its name plus sorted, compact JSON arguments.

    With ``traits``, the tool's workspace-path arguments are normalised first, as the workspace
    reads them (``goalgraph.tools.workspace_paths``): ``./notes.txt`` after ``notes.txt`` is
    the same call, so loop detection counts it.
    """
    info = (traits or {}).get(tool)
    if info is not None and info.path_args and isinstance(args, Mapping):
        args = normalise_path_args(args, info.path_args)
    return f"{tool}:{json.dumps(args, sort_keys=True, separators=(',', ':'), default=str)}"


def check_action(
    action: ProposedAction,
    *,
    policy: SafetySpec,
    schemas: Mapping[str, Mapping[str, Any]],
    ledger: RunLedger,
    max_identical_calls: int,
    traits: Mapping[str, ToolTraits] | None = None,
    allow_hosts: Sequence[str] = (),
    now: float | None = None,
    goal: str | None = None,
    hints: Mapping[str, ToolHints] | None = None,
) -> PolicyVerdict:
    """Decide whether a proposed tool call may run.

    Checks, in order: the tool exists; the deny lists (tools and risk classes) and the allow
    list; the arguments validate against the tool's JSON schema; workspace-path arguments stay
    inside the workspace (read as the workspace tools read them) and URL arguments name an
    allowed host; the same call (path arguments normalised) has not already run
    ``max_identical_calls`` times (loop detection); it does not repeat a read-only call that
    already succeeded with nothing but reads since (``RunLedger.unchanged_reads``: the current
    step's planned tool's, so a step copying an earlier step's call); the run's budgets;
    the rate limit (a wait, not a refusal); a run tainted by untrusted content (``taint_of``);
    a ``write`` call when the goal only asks questions (``confirm_unasked_writes``); a call
    the goal's words forbid (``confirm_forbidden_calls``); and whether a human must approve the
    tool or its class.

    Args:
        action: The proposed tool call.
        policy: The spec's safety section.
        schemas: Each tool's argument schema by name.
        ledger: What the run has done so far.
        max_identical_calls: How often the same call may run.
        traits: Risk class and path/URL arguments by tool name (unknown tools count as exec).
        allow_hosts: Hosts URL arguments may name (``*``: any).
        now: The current time for the rate limit (default ``time.time()``).
        goal: The run's goal, for the checks that read it (``None``: those are skipped).
        hints: The tools' hints (``goalgraph.hints``), which name the tools a goal forbids.
    """
    tool = action["tool"] or ""
    if tool not in schemas:
        known = ", ".join(schemas) or "none"
        return PolicyVerdict("block", f"unknown tool {tool!r}; available: {known}", "unknown_tool")
    info = (traits or {}).get(tool, _UNKNOWN)
    risk = info.risk

    def verdict(decision: Decision, reason: str, rule: Rule, wait: float = 0.0) -> PolicyVerdict:
        return PolicyVerdict(decision, reason, rule, risk, wait)

    if tool in policy.deny_tools:
        return verdict("block", f"tool {tool!r} is denied by the safety policy", "denied")
    if risk in policy.deny_classes:
        return verdict("block", f"tool {tool!r} is {risk} risk, denied by the policy", "denied")
    if policy.allow_tools is not None and tool not in policy.allow_tools:
        return verdict(
            "block", f"tool {tool!r} is not on the safety policy's allow list", "not_allowed"
        )
    problem = _argument_problem(tool, action["args"], schemas[tool])
    if problem is not None:
        return verdict("block", problem, "invalid_arguments")
    if ledger.seen_text is not None:
        copied = copied_example(action["args"], schemas[tool], ledger.seen_text)
        if copied is not None:
            reason = (
                f"{tool}.{copied[0]}: {copied[1]!r} is the example in the argument's description, "
                "and neither the goal nor any tool result mentions it; use a value the goal "
                "gives, or look it up with another tool first"
            )
            return verdict("block", reason, "copied_example")
    for name in info.path_args:
        problem = path_problem(action["args"].get(name))
        if problem is not None:
            return verdict("block", f"{tool}.{name}: {problem}", "path_escape")
    for name in info.url_args:
        problem = _url_problem(action["args"].get(name), allow_hosts)
        if problem is not None:
            return verdict("block", f"{tool}.{name}: {problem}", "host_not_allowed")
    signature = call_signature(tool, action["args"], traits)
    runs = ledger.call_counts.get(signature, 0)
    if runs >= max_identical_calls:
        return verdict(
            "block",
            f"loop detected: {tool} with these arguments already ran {runs} times; "
            "use its result or try something else",
            "loop",
        )
    made = ledger.done_changes.get(signature)
    if made is not None and policy.block_repeated_changes:
        return verdict(
            "block",
            f"{tool} with these arguments already ran and succeeded: it returned "
            f"{_shown(made)!r}. Running it again would make the same change twice; "
            "if that result finishes this step, call step_done",
            "repeat",
        )
    earlier = ledger.unchanged_reads.get(signature)
    if earlier is not None:
        return verdict(
            "block",
            f"{tool} with these arguments already ran, and nothing has been written or run "
            f"since: it returned {_shown(earlier)!r}. This step plans {tool} too: call it with "
            "the values this step names, or step_done if that result already answers this step",
            "repeat",
        )
    problem = _budget_problem(tool, risk, policy, ledger, traits or {})
    if problem is not None:
        return verdict("block", problem, "budget")
    if ledger.tainted_by and risk in _RISKY and policy.on_injection != "flag":
        reason = (
            f"tool {tool!r} is {risk} risk and the run has read content it cannot trust "
            f"({ledger.tainted_by})"
        )
        return verdict("ask" if policy.on_injection == "ask" else "block", reason, "tainted")
    wait = _rate_wait(policy, ledger, time.time() if now is None else now)
    if policy.confirm_unasked_writes and risk == "write" and goal and asks_only_questions(goal):
        reason = f"tool {tool!r} changes things, but the goal only asks a question: {goal[:200]!r}"
        return verdict("ask", reason, "unasked_write", wait)
    if policy.confirm_forbidden_calls and goal and hints:
        for prohibition in prohibitions(goal, hints):
            if prohibition.tool == tool and prohibition.covers(action["args"]):
                reason = f"the goal says not to do this with {tool!r}: {goal[:200]!r}"
                return verdict("ask", reason, "forbidden_by_goal", wait)
    if "*" in policy.require_approval or tool in policy.require_approval:
        return verdict("ask", f"tool {tool!r} requires human approval", "approval", wait)
    if risk in policy.approval_classes:
        reason = f"tool {tool!r} is {risk} risk, which requires human approval"
        return verdict("ask", reason, "approval", wait)
    return verdict("allow", "passed the safety policy", "allowed", wait)


def _shown(output: str) -> str:
    """An earlier output as a refusal quotes it: at most 300 characters."""
    return output if len(output) <= 300 else output[:300] + " [...]"


def done_changes(
    observations: Sequence[Mapping[str, Any]], traits: Mapping[str, ToolTraits]
) -> dict[str, str]:
    """Return the calls of ``write`` tools among ``observations`` that succeeded, by
    ``call_signature``, with their (latest) output."""
    changes = (
        observation
        for observation in observations
        if (info := traits.get(observation["tool"])) is not None and info.risk == "write"
    )
    return _successes(changes, traits)


def unchanged_reads(
    observations: Sequence[Mapping[str, Any]],
    traits: Mapping[str, ToolTraits],
    *,
    tool: str | None = None,
) -> dict[str, str]:
    """Return the read-only calls among ``observations`` (oldest first) that succeeded after
    the last call of any other class (or of an unknown tool), by ``call_signature``, with their
    output: calls whose result nothing has changed since. With ``tool``, only that tool's."""
    reads = reads_since_change(observations, traits)
    return _successes((o for o in reads if tool in (None, o["tool"])), traits)


def _successes(
    observations: Iterable[Mapping[str, Any]], traits: Mapping[str, ToolTraits]
) -> dict[str, str]:
    """Return the calls among ``observations`` that succeeded, by ``call_signature``, with their
    output (a later run of the same call wins)."""
    return {
        call_signature(observation["tool"], observation["args"], traits): str(
            observation["content"]
        )
        for observation in observations
        if observation["ok"]
    }


def reads_since_change(
    observations: Sequence[Mapping[str, Any]], traits: Mapping[str, ToolTraits]
) -> Sequence[Mapping[str, Any]]:
    """Return the ``observations`` (oldest first) after the last call that is not read-only (or
    of an unknown tool): a write, a program or a fetch may have changed what a read sees."""
    changes = [
        index
        for index, observation in enumerate(observations)
        if (info := traits.get(observation["tool"])) is None or info.risk != "read"
    ]
    return observations[changes[-1] + 1 :] if changes else observations


def output_source(
    traits: ToolTraits | None, args: Mapping[str, Any], *, saved_outputs: str
) -> Source:
    """Return where a call's output comes from: its tool's source, or ``external`` for a read
    of a path inside ``saved_outputs`` (where earlier tools' outputs were saved, e.g. a fetched
    page cut short: content the user did not provide)."""
    if traits is None:
        return "external"
    folder = normalise_path(saved_outputs).parts
    for name in traits.path_args:
        try:  # read as the workspace reads it: "a/../.goalgraph/..." is inside the folder too
            parts = normalise_path(str(args.get(name) or "")).parts
        except PathRefused:
            continue  # the path check refuses the call; it has no output
        if folder and parts[: len(folder)] == folder:
            return "external"
    return traits.source


def taint_of(
    tool: str, call_id: str, source: Source, flags: Sequence[str], policy: SafetySpec
) -> str | None:
    """Return why a call's output taints the run (which call, and what about it), or ``None``.

    Output from a source outside ``policy.trusted_sources`` taints whatever it says; output the
    injection screen flagged (``flags``) taints even from a trusted source.
    """
    if flags:
        found = ", ".join(flags)
        return f"{tool} call {call_id}: text that looks like injected instructions ({found})"
    if source not in policy.trusted_sources:
        return f"{tool} call {call_id}: {source} content"
    return None


def _argument_problem(tool: str, args: Any, schema: Mapping[str, Any]) -> str | None:
    validator = _validator(json.dumps(schema, sort_keys=True))
    if validator is None:
        return None
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    return f"invalid arguments for {tool!r}: {where}: {error.message}"


def _url_problem(value: Any, allow_hosts: Sequence[str]) -> str | None:
    """Apply ``http_get``'s own static URL rules (``goalgraph.tools.web.check_url``)."""
    if value is None:
        return None
    try:
        check_url(str(value), Allowlist.from_hosts(list(allow_hosts)))
    except WebError as exc:
        return str(exc)
    return None


def _budget_problem(
    tool: str,
    risk: RiskClass,
    policy: SafetySpec,
    ledger: RunLedger,
    traits: Mapping[str, ToolTraits],
) -> str | None:
    total = sum(ledger.tool_counts.values())
    if policy.max_tool_calls is not None and total >= policy.max_tool_calls:
        return f"budget spent: this run already made {total} tool calls (safety.max_tool_calls)"
    limit = policy.max_calls_per_tool.get(tool)
    used = ledger.tool_counts.get(tool, 0)
    if limit is not None and used >= limit:
        return f"budget spent: {tool} already ran {used} times (safety.max_calls_per_tool)"
    limit = policy.max_calls_per_class.get(risk)
    if limit is not None:
        used = sum(
            count
            for name, count in ledger.tool_counts.items()
            if traits.get(name, _UNKNOWN).risk == risk
        )
        if used >= limit:
            return f"budget spent: {used} {risk} calls already (safety.max_calls_per_class)"
    return None


def _rate_wait(policy: SafetySpec, ledger: RunLedger, now: float) -> float:
    limit = policy.max_calls_per_minute
    if limit is None:
        return 0.0
    recent = sorted(t for t in ledger.call_times if now - t < RATE_WINDOW_S)
    if len(recent) < limit:
        return 0.0
    return max(0.0, recent[-limit] + RATE_WINDOW_S - now)


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.protocols.Validator | None:
    """Build (once per schema) a validator; ``None`` for a server's broken schema.

    ``jsonschema.validate`` re-checks the schema itself on every call, which measured ~0.8 ms,
    about half of goalgraph's per-step framework overhead.
    """
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None  # The call itself will report the server's errors.
    return cls(schema)


def human_decision(value: Any) -> tuple[bool, str]:
    """Interpret a resume value from a human approver as ``(approved, reason)``.

    Accepts ``True``/``False``, ``"approve"``/``"deny"``, or a mapping with ``approve`` (bool)
    and an optional ``reason``. Anything else counts as a denial, so a malformed answer never
    runs a tool.
    """
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, str):
        return value.strip().lower() in {"approve", "approved", "yes", "y"}, ""
    if isinstance(value, Mapping):
        approve = value.get("approve")
        reason = str(value.get("reason") or "")
        if isinstance(approve, bool):
            return approve, reason
    return False, f"unrecognised approval answer {value!r}"
