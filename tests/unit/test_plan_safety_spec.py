"""Pure pieces: plan sanitising, the safety policy, routes and the spec."""

from __future__ import annotations

import pytest

from goalgraph.graph import route_after_reflect, route_after_safety, route_after_think
from goalgraph.plan import fallback_plan, next_step_id, steps_from_output
from goalgraph.safety import RunLedger, call_signature, check_action, human_decision
from goalgraph.spec import AgentSpec, SafetySpec, SpecError

SCHEMAS = {
    "calculator": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    }
}


def action(tool="calculator", **args):
    return {
        "kind": "tool",
        "thought": "",
        "tool": tool,
        "args": args or {"expression": "1"},
        "call_id": "c",
        "text": "",
    }


def check(act, **policy):
    return check_action(
        act, policy=SafetySpec(**policy), schemas=SCHEMAS, ledger=RunLedger(), max_identical_calls=2
    )


def test_plan_output_is_sanitised():
    steps = steps_from_output(
        {
            "steps": [
                {"description": " a ", "tool": "nope", "depends_on": [1, 2, 7]},
                {"description": ""},
                {"description": "b", "tool": "calculator", "depends_on": [1, 1]},
            ]
        },
        first_id=5,
        tool_names=["calculator"],
    )
    assert [(s["id"], s["description"], s["tool"], s["depends_on"]) for s in steps] == [
        (5, "a", None, []),
        (6, "b", "calculator", [5]),
    ]
    with pytest.raises(ValueError):
        steps_from_output({"steps": []}, tool_names=[])
    with pytest.raises(ValueError):
        steps_from_output(None, tool_names=[])


def test_next_step_waits_for_dependencies():
    steps = fallback_plan("g") + fallback_plan("h", first_id=2)
    steps[1]["depends_on"] = [1]
    assert next_step_id(steps) == 1
    steps[0]["status"] = "failed"
    assert next_step_id(steps) is None  # Its dependency failed: nothing can run.


@pytest.mark.parametrize(
    ("act", "policy", "decision", "fragment"),
    [
        (action("rm_rf"), {}, "block", "unknown tool"),
        (action(), {"deny_tools": ["calculator"]}, "block", "denied"),
        (action(), {"allow_tools": ["other"]}, "block", "allow list"),
        (action(expression=3), {}, "block", "invalid arguments"),
        (action(), {"require_approval": ["calculator"]}, "ask", "approval"),
        (action(), {"require_approval": ["*"]}, "ask", "approval"),
        (action(), {}, "allow", "passed"),
    ],
)
def test_policy_verdicts(act, policy, decision, fragment):
    verdict = check(act, **policy)
    assert verdict.decision == decision and fragment in verdict.reason


def test_loop_detection_counts_canonical_arguments():
    a = action(expression="1+1")
    key = call_signature("calculator", {"expression": "1+1"})
    verdict = check_action(
        a,
        policy=SafetySpec(),
        schemas=SCHEMAS,
        ledger=RunLedger(call_counts={key: 2}),
        max_identical_calls=2,
    )
    assert verdict.decision == "block" and "loop detected" in verdict.reason
    assert call_signature("t", {"a": 1, "b": 2}) == call_signature("t", {"b": 2, "a": 1})


@pytest.mark.parametrize(
    ("answer", "approved"),
    [
        (True, True),
        (False, False),
        ("approve", True),
        ({"approve": True}, True),
        ({"approve": "yes"}, False),
        (None, False),
        (42, False),
    ],
)
def test_malformed_approval_answers_deny(answer, approved):
    assert human_decision(answer)[0] is approved


def test_routes():
    tool = {"status": "running", "proposed_action": action()}
    assert route_after_think(tool) == "safety_check"
    assert route_after_think({"status": "running", "proposed_action": None}) == "reflect"
    assert route_after_think({"status": "stopped_limit"}) == "summarize_memory"
    assert route_after_think({"status": "running", "route": "compact"}) == "summarize_memory"
    assert route_after_safety({"verdict": {"decision": "allow"}}) == "act"
    assert route_after_safety({"verdict": {"decision": "block"}}) == "reflect"
    assert route_after_reflect({"status": "running", "route": "replan"}) == "replan"
    assert route_after_reflect({"status": "running", "route": "next"}) == "think"
    assert route_after_reflect({"status": "done", "route": "end"}) == "summarize_memory"


def test_spec_sources_and_errors(tmp_path, monkeypatch):
    path = tmp_path / "agent.yaml"
    path.write_text(
        "limits: {max_steps: 7}\nmcpServers:\n  other: {url: 'http://127.0.0.1:9/mcp'}\n"
    )
    spec = AgentSpec.from_yaml(path)
    assert spec.limits.max_steps == 7 and set(spec.all_servers()) == {"other", "goalgraph"}
    monkeypatch.setenv("GOALGRAPH_LIMITS__MAX_REPLANS", "0")
    assert AgentSpec.from_yaml(path).limits.max_replans == 0
    with pytest.raises(SpecError, match=r"limits.max_steps: Input should be greater than 0"):
        AgentSpec(limits={"max_steps": 0})
    with pytest.raises(SpecError, match="exactly one of 'command'"):
        AgentSpec(mcpServers={"bad": {}})
    path.write_text("- a list")
    with pytest.raises(SpecError, match="must hold a mapping"):
        AgentSpec.from_yaml(path)
    with pytest.raises(SpecError, match="cannot read"):
        AgentSpec.from_yaml(tmp_path / "missing.yaml")
