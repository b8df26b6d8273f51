"""The deterministic safety policy applied to every proposed tool call.

``check_action`` is a pure function: the same action, policy and history always give the same
verdict, which makes the policy testable without a graph and reproducible after a resume.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema

from goalgraph.spec import SafetySpec
from goalgraph.state import ProposedAction

__all__ = ["PolicyVerdict", "call_signature", "check_action", "human_decision"]


@dataclass(frozen=True)
class PolicyVerdict:
    """The policy's answer: run it, refuse it, or ask a human."""

    decision: Literal["allow", "block", "ask"]
    """``ask`` means the tool needs human approval before it runs."""
    reason: str
    """Why, in one sentence."""


def call_signature(tool: str, args: Mapping[str, Any]) -> str:
    """Return a canonical key for a tool call: its name plus sorted, compact JSON arguments."""
    return f"{tool}:{json.dumps(args, sort_keys=True, separators=(',', ':'), default=str)}"


def check_action(
    action: ProposedAction,
    *,
    policy: SafetySpec,
    schemas: Mapping[str, Mapping[str, Any]],
    call_counts: Mapping[str, int],
    max_identical_calls: int,
) -> PolicyVerdict:
    """Decide whether a proposed tool call may run.

    Checks, in order: the tool exists; the deny and allow lists; the arguments validate against
    the tool's JSON schema; the same call has not already run ``max_identical_calls`` times (loop
    detection); and whether the tool needs human approval.
    """
    tool = action["tool"] or ""
    if tool not in schemas:
        return PolicyVerdict("block", f"unknown tool {tool!r}; available: {', '.join(schemas)}")
    if tool in policy.deny_tools:
        return PolicyVerdict("block", f"tool {tool!r} is denied by the safety policy")
    if policy.allow_tools is not None and tool not in policy.allow_tools:
        return PolicyVerdict("block", f"tool {tool!r} is not on the safety policy's allow list")
    validator = _validator(json.dumps(schemas[tool], sort_keys=True))
    error = (
        jsonschema.exceptions.best_match(validator.iter_errors(action["args"]))
        if validator
        else None
    )
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "arguments"
        return PolicyVerdict("block", f"invalid arguments for {tool!r}: {where}: {error.message}")
    runs = call_counts.get(call_signature(tool, action["args"]), 0)
    if runs >= max_identical_calls:
        return PolicyVerdict(
            "block",
            f"loop detected: {tool} with these arguments already ran {runs} times; "
            "use its result or try something else",
        )
    if "*" in policy.require_approval or tool in policy.require_approval:
        return PolicyVerdict("ask", f"tool {tool!r} requires human approval")
    return PolicyVerdict("allow", "passed the safety policy")


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
