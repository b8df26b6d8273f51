"""The pure no-progress rules: failure keys, repeated plan steps and when a run has stalled."""

from __future__ import annotations

import pytest

from goalgraph.progress import (
    NO_PROGRESS,
    FailedCall,
    describe_call,
    failure_key,
    no_progress_reason,
    normalise_args,
    normalise_text,
    redone_steps,
    repeated_step,
    repeats_step,
)
from goalgraph.state import PlanStep


def step(description: str, tool: str | None, step_id: int = 1) -> PlanStep:
    return PlanStep(
        id=step_id,
        description=description,
        tool=tool,
        depends_on=[],
        success_criteria="",
        status="pending",
        attempts=0,
        result=None,
    )


# --- normalising and keys -----------------------------------------------------------------------


def test_normalise_collapses_whitespace_and_case() -> None:
    assert normalise_text("  Read\tTHE\n notes  ") == "read the notes"
    assert normalise_args({"a": [" X ", {"b": "Y  z"}], "n": 3}) == {
        "a": ["x", {"b": "y z"}],
        "n": 3,
    }


def test_failure_key_is_same_call_same_error() -> None:
    key = failure_key("read_file", {"path": "notes.txt"}, "no such file: 'notes.txt'")
    assert key == failure_key("read_file", {"path": " NOTES.txt"}, "no such  file: 'notes.txt' ")
    assert len(key) == 16
    # Another tool, other arguments or another error is another failure.
    assert key != failure_key("search_files", {"path": "notes.txt"}, "no such file: 'notes.txt'")
    assert key != failure_key("read_file", {"path": "todo.txt"}, "no such file: 'notes.txt'")
    assert key != failure_key("read_file", {"path": "notes.txt"}, "is a folder")
    # Argument order does not matter; no tool (the model gave nothing usable) is a key too.
    assert failure_key("t", {"a": 1, "b": 2}, "e") == failure_key("t", {"b": 2, "a": 1}, "e")
    assert failure_key(None, None, "the model gave no action") == failure_key(
        "", {}, "The model gave no action"
    )


def test_a_huge_argument_costs_a_short_key() -> None:
    assert len(failure_key("python", {"code": "x" * 100_000}, "error")) == 16


def test_describe_call_is_bounded() -> None:
    assert describe_call("calculator", {"expression": "15%"}) == 'calculator({"expression": "15%"})'
    assert describe_call(None, None) == "the model's answer"
    long = describe_call("python", {"code": "print(1)\n" * 100})
    assert len(long) < 180 and long.endswith("...)")


# --- when a run has stalled -----------------------------------------------------------------------


def reason(**overrides: object) -> str | None:
    values: dict[str, object] = {
        "repeats": 1,
        "max_repeats": 4,
        "stalled": 1,
        "max_stalled": 6,
        "tool": "read_file",
        "args": {"path": "notes.txt"},
        "error": "no such file: 'notes.txt'",
    }
    return no_progress_reason(**{**values, **overrides})  # type: ignore[arg-type]


def test_below_both_limits_the_run_goes_on() -> None:
    assert reason(repeats=3, stalled=5) is None


def test_the_same_failure_seen_too_often_ends_the_run() -> None:
    assert reason(repeats=4) == (
        'no progress: read_file({"path": "notes.txt"}) failed 4 times with the same error '
        "(limits.max_repeated_failures is 4): no such file: 'notes.txt'"
    )


def test_too_many_failed_attempts_in_a_row_end_the_run() -> None:
    message = reason(stalled=6, error="boom:\n  kaput " + "x" * 1000)
    assert message is not None
    assert message.startswith(
        "no progress: 6 failed attempts in a row and no step completed "
        "(limits.max_stalled_attempts is 6); last error: boom: kaput xxx"
    )
    assert len(message) < 450  # the error is cut


def test_every_reason_starts_alike() -> None:
    for message in [reason(repeats=9), reason(stalled=9)]:
        assert message is not None and message.startswith(NO_PROGRESS)


# --- a revised plan that repeats the failed step -------------------------------------------------


FAILED = step("Read the notes", "read_file")
CALLS = [FailedCall("read_file", {"path": "notes.txt"})]


@pytest.mark.parametrize(
    ("new", "repeats"),
    [
        (step("  read THE notes ", "read_file"), True),  # same words, whitespace and case aside
        (step("Read the notes", "search_files"), False),  # another tool
        (step("Open notes.txt", "read_file"), True),  # names the arguments that failed
        (step("Open notes.txt.", "read_file"), True),  # a full stop ends the sentence
        (step("Open 'notes.txt' again", "read_file"), True),
        (step("Open docs/notes.txt", "read_file"), False),  # another path that contains it
        (step("Open notes.txt.bak", "read_file"), False),
        (step("Open my_notes.txt", "read_file"), False),
        (step("Open notes.txt", "search_files"), False),
        (step("Read the to-do list", "read_file"), False),
    ],
)
def test_repeats_step(new: PlanStep, repeats: bool) -> None:
    assert repeats_step(new, FAILED, CALLS) is repeats


def test_a_call_with_several_values_repeats_only_when_all_are_named() -> None:
    calls = [FailedCall("sqlite_query", {"database": "shop.db", "sql": "SELECT * FROM shop"})]
    failed = step("Count the customers", "sqlite_query")
    assert not repeats_step(step("Query shop.db again", "sqlite_query"), failed, calls)
    again = step("Run SELECT * FROM shop on shop.db", "sqlite_query")
    assert repeats_step(again, failed, calls)


def test_a_call_without_values_never_matches_by_arguments() -> None:
    calls = [FailedCall("list_files", {}), FailedCall("read_file", {"path": ""})]
    failed = step("List the folder", "list_files")
    assert not repeats_step(step("Show what is there", "list_files"), failed, calls)


def test_only_the_step_that_runs_next_counts() -> None:
    first = step("read the notes", "read_file", 3)
    other = step("Search for notes", "search_files", 4)
    assert repeated_step([first, other], FAILED, CALLS) is first
    # A repeat after a step that brings something new is another attempt.
    assert repeated_step([other, first], FAILED, CALLS) is None
    assert repeated_step([], FAILED, CALLS) is None


# --- a revised plan that only redoes done steps -------------------------------------------------


def _done(description: str, tool: str | None, step_id: int) -> PlanStep:
    return PlanStep(**{**step(description, tool, step_id), "status": "done", "result": "no match"})


def test_a_plan_of_only_done_steps_again_is_a_redo() -> None:
    searched = _done("Search for walnut knobs", "search_products", 1)
    old = [searched, step("Find the SKU", "get_product", 2)]
    copied = step(
        "Search for Walnut knobs (tool: search_products) => no match", "search_products", 3
    )
    assert redone_steps([copied], old) == [searched]
    assert redone_steps([step("search for WALNUT  knobs", "search_products", 3)], old) == [searched]


def test_one_new_step_or_another_tool_is_no_redo() -> None:
    old = [_done("Search for walnut knobs", "search_products", 1)]
    copied = step("Search for walnut knobs", "search_products", 2)
    assert redone_steps([copied, step("Set the price", "set_price", 3)], old) == []
    assert redone_steps([step("Search for walnut knobs", "get_product", 2)], old) == []
    assert redone_steps([step("Search for walnut knobs", "search_products", 2)], []) == []
    assert redone_steps([], old) == []
