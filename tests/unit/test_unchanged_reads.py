"""Recovery from a copied call (the ``repeat_recovery`` profile rule): a read-only call that already
succeeded, with only reads run since, is not run again (it could only return the same; the model
gets the earlier output), and the turn after such a refusal sees only the current step's
messages."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage

from goalgraph.risk import ToolTraits
from goalgraph.safety import unchanged_reads
from goalgraph.testing import final_answer, plan, tool_call

READ = {"tools": {"risk": {"calculator": "read", "ping": "read", "write_note": "write"}}}


def _tool_messages(agent: Any, thread_id: str) -> list[ToolMessage]:
    return [m for m in agent.state(thread_id)["messages"] if isinstance(m, ToolMessage)]


def test_a_read_copied_into_the_next_step_is_answered_with_its_result(make_agent):
    agent, model = make_agent(
        [
            plan(("double 21", "calculator"), ("double 50", "calculator")),
            tool_call("calculator", expression="2*21"),
            tool_call("calculator", expression="2*21"),  # step 2 copies step 1's call
            tool_call("calculator", expression="2*50"),
            final_answer("42 and 100"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("double 21 and 50", thread_id="t")
    assert result.status == "done"
    assert [s["result"] for s in result.plan] == ["42", "100"]
    blocked = _tool_messages(agent, "t")[1]
    assert blocked.status == "error"
    assert "already ran, and nothing has been written or run since" in str(blocked.content)
    assert "This step plans calculator too" in str(blocked.content)
    assert "'42'" in str(blocked.content)  # the earlier output, so the model can use it
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 1
    note = str(model.calls[3][-1].content)  # the note comes last (feedback_last)
    assert "Note: calculator was blocked" in note and "step_done" in note
    # The retry does not see step 1's call (the one copied); the first copy did.
    copied_from = {m.tool_calls[0]["id"] for m in model.calls[2] if getattr(m, "tool_calls", None)}
    assert copied_from, "the first attempt at step 2 saw step 1's call"
    retry_calls = [m for m in model.calls[3] if getattr(m, "tool_calls", None)]
    assert all(m.tool_calls[0]["id"] not in copied_from for m in retry_calls)


def test_after_a_write_the_same_read_runs_again(make_agent):
    agent, _ = make_agent(
        [
            plan(("check", "ping"), ("note", "write_note"), ("check again", "ping")),
            tool_call("ping"),
            tool_call("write_note", text="x"),
            tool_call("ping"),
            final_answer("pong twice"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("check, note, check", thread_id="t")
    assert result.status == "done" and result.counters["tool_calls"] == 3
    assert result.counters["blocked"] == 0


def test_a_repeat_on_a_step_that_plans_another_tool_runs(make_agent):
    """Re-reading on a step that plans no tool (or another one) is not a copied step: it runs."""
    agent, _ = make_agent(
        [
            plan(("double 21", "calculator"), ("report it", None)),
            tool_call("calculator", expression="2*21"),
            tool_call("calculator", expression="2*21"),
            final_answer("42"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("double 21 and report it", thread_id="t")
    assert result.status == "done"
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 0


def test_the_recovery_can_be_turned_off(make_agent):
    agent, model = make_agent(
        [
            plan(("double 21", "calculator"), ("again", "calculator")),
            tool_call("calculator", expression="2*21"),
            tool_call("calculator", expression="2*21"),
            final_answer("42"),
        ],
        profile="standard",
        model={"rules": {"repeat_recovery": False}},
        **READ,
    )
    result = agent.run("double 21 twice", thread_id="t")
    assert result.counters["tool_calls"] == 2 and result.counters["blocked"] == 0
    assert any(getattr(m, "tool_calls", None) for m in model.calls[2])  # full history


def test_unchanged_reads_are_those_since_the_last_other_call():
    traits = {
        "read_file": ToolTraits("read", path_args=("path",)),
        "write_file": ToolTraits("write", path_args=("path",)),
    }

    def seen(tool: str, ok: bool = True, **args: Any) -> dict[str, Any]:
        return {"tool": tool, "args": args, "ok": ok, "content": f"{tool}{args}"}

    observations = [
        seen("read_file", path="a.txt"),
        seen("write_file", path="b.txt"),
        seen("read_file", path="./c.txt"),
        seen("read_file", ok=False, path="d.txt"),
        seen("mystery"),  # an unknown tool may change anything
        seen("read_file", path="e.txt"),
    ]
    assert list(unchanged_reads(observations, traits)) == ['read_file:{"path":"e.txt"}']
    reads = unchanged_reads(observations[:4], traits)
    assert list(reads) == ['read_file:{"path":"c.txt"}']  # normalised; failures not kept
    assert unchanged_reads(observations[:4], traits, tool="search") == {}


# --- settle_repeats: a read proposed again ends the step with its earlier result --------------


def test_a_read_proposed_again_on_its_step_settles_the_step(make_agent):
    agent, model = make_agent(
        [
            plan(("double 21", "ping")),  # planned with another tool, so the call ends nothing
            tool_call("calculator", expression="2*21"),
            tool_call("calculator", expression="2*21"),  # instead of step_done
            final_answer("42"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("double 21", thread_id="t")
    assert result.status == "done" and result.answer == "42"
    assert [(s["status"], s["result"]) for s in result.plan] == [("done", "42")]
    assert result.counters["tool_calls"] == 1 and result.counters["blocked"] == 0
    assert len(model.calls) == 4  # plan, two calls, the answer: no third call


def test_a_copied_read_proposed_again_after_its_refusal_settles_the_step(make_agent):
    agent, _ = make_agent(
        [
            plan(("double 21", "calculator"), ("double it again", "calculator")),
            tool_call("calculator", expression="2*21"),
            tool_call("calculator", expression="2*21"),  # refused as a repeat
            tool_call("calculator", expression="2*21"),  # again: the step takes 42
            final_answer("42"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("double 21, twice", thread_id="t")
    assert result.status == "done"
    assert [s["result"] for s in result.plan] == ["42", "42"]
    assert result.counters["tool_calls"] == 1 and result.counters["blocked"] == 1


def test_a_read_proposed_again_after_a_loop_refusal_settles_the_step(make_agent):
    script = [
        plan(
            ("double 21", "calculator"),
            ("note it", "write_note"),
            ("double 21 again", "calculator"),
            ("and once more", "calculator"),
        ),
        tool_call("calculator", expression="2*21"),
        tool_call("write_note", text="42"),
        tool_call("calculator", expression="2*21"),  # runs: a write came between
        tool_call("calculator", expression="2*21"),  # a third run: refused as a loop
        tool_call("calculator", expression="2*21"),  # again: the step takes 42
        final_answer("42"),
    ]
    agent, _ = make_agent(script, profile="standard", **READ)
    result = agent.run("double 21, note it, double it twice more", thread_id="t")
    assert result.status == "done"
    assert [s["result"] for s in result.plan][2:] == ["42", "42"]
    assert result.counters["tool_calls"] == 3 and result.counters["blocked"] == 1
    refusals = [m for m in _tool_messages(agent, "t") if m.status == "error"]
    assert len(refusals) == 1 and "loop detected" in str(refusals[0].content)


def test_a_read_after_a_write_and_with_the_rule_off_runs_again(make_agent):
    script = [
        plan(("double 21", "ping")),
        tool_call("calculator", expression="2*21"),
        tool_call("write_note", text="x"),
        tool_call("calculator", expression="2*21"),  # something was written since: it runs
        tool_call("ping"),
        final_answer("42"),
    ]
    agent, _ = make_agent(script, profile="standard", **READ)
    result = agent.run("double 21", thread_id="t")
    assert result.status == "done" and result.counters["tool_calls"] == 4
    off, _ = make_agent(
        [
            plan(("double 21", "ping")),
            *[tool_call("calculator", expression="2*21")] * 2,
            tool_call("ping"),
            final_answer("42"),
        ],
        profile="standard",
        model={"rules": {"settle_repeats": False}},
        **READ,
    )
    result = off.run("double 21", thread_id="t")
    assert result.status == "done" and result.counters["tool_calls"] == 3


def test_a_change_proposed_again_on_its_step_settles_it_and_runs_once(make_agent):
    agent, _ = make_agent(
        [
            plan(("book the delivery", "write_note"), ("check", "ping")),
            tool_call("write_note", text="500 screws"),
            tool_call("write_note", text="500 screws"),  # the same change again
            tool_call("ping"),
            final_answer("booked"),
        ],
        profile="standard",
        **READ,
    )
    result = agent.run("Book 500 screws, then check", thread_id="w")
    assert result.status == "done"
    assert [o["tool"] for o in result.observations] == ["write_note", "ping"]
    assert result.plan[0]["result"] == "wrote 10 characters"


def test_without_settling_a_repeated_change_is_blocked_with_its_result(make_agent):
    agent, _ = make_agent(
        [
            plan(("book the delivery", "write_note")),
            tool_call("write_note", text="500 screws"),
            tool_call("write_note", text="500 screws"),
            final_answer("booked"),
        ],
        **READ,  # tiny: no settle_repeats
    )
    result = agent.run("Book 500 screws", thread_id="w")
    assert [o["tool"] for o in result.observations] == ["write_note"]
    blocked = _tool_messages(agent, "w")[1]
    assert blocked.status == "error" and "the same change twice" in str(blocked.content)
    assert "'wrote 10 characters'" in str(blocked.content)
