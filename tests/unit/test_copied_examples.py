"""``goalgraph.copied_examples``: a required argument copied from the example in its own
description, which neither the goal nor a tool result mentions, is found; the safety check
blocks such a call under the ``refuse_copied_examples`` profile rule."""

from __future__ import annotations

from typing import Any

import pytest

from goalgraph.copied_examples import copied_example, description_examples
from goalgraph.profiles import PROFILES
from goalgraph.safety import RunLedger, check_action
from goalgraph.spec import SafetySpec

SUPPLIER = {
    "type": "object",
    "properties": {
        "supplier": {
            "type": "string",
            "description": "The supplier's id or name, e.g. hingeco or Hinge & Co",
        },
        "reason": {"type": "string", "description": "Why, e.g. delivery, damaged, stocktake"},
    },
    "required": ["supplier"],
}


@pytest.mark.parametrize(
    ("description", "examples"),
    [
        ("The order number, e.g. SO-1001", {"SO-1001"}),
        ("The product's SKU, e.g. hinge-brass (search_products lists them)", {"hinge-brass"}),
        ("A path, for example notes/todo.txt. Relative to the workspace.", {"notes/todo.txt"}),
        ("The name, e.g. 'Ada'", {"Ada"}),
        ("Words of the product's name; empty: all", set()),
    ],
)
def test_the_examples_a_description_gives_are_read(description: str, examples: set[str]):
    assert description_examples(description) == examples


def test_each_alternative_of_an_example_is_an_example_too():
    found = description_examples("The supplier's id or name, e.g. hingeco or Hinge & Co")
    assert found == {"hingeco or Hinge & Co", "hingeco", "Hinge & Co"}


@pytest.mark.parametrize(
    ("args", "seen", "copied"),
    [
        ({"supplier": "hingeco or Hinge & Co"}, "Who supplies varnish?", "hingeco or Hinge & Co"),
        ({"supplier": "HINGECO"}, "Who supplies varnish?", "HINGECO"),  # case aside
        ({"supplier": "hingeco"}, "Write to Hingeco about hinges", None),  # the goal names it
        ({"supplier": "hingeco"}, "varnish-oak: supplier: Hinge & Co (hingeco)", None),  # a result
        ({"supplier": "varnishco"}, "Who supplies varnish?", None),  # not an example
        ({"supplier": "x", "reason": "damaged"}, "Who supplies varnish?", None),  # optional
    ],
)
def test_a_copied_example_is_found_only_when_nothing_else_gives_it(
    args: dict[str, Any], seen: str, copied: str | None
):
    found = copied_example(args, SUPPLIER, seen)
    assert found == (None if copied is None else ("supplier", copied))


def _check(args: dict[str, Any], seen: str | None):
    action = {"kind": "tool", "thought": "", "tool": "get_supplier", "args": args}
    return check_action(
        {**action, "call_id": "c", "text": ""},  # type: ignore[typeddict-item]
        policy=SafetySpec(),
        schemas={"get_supplier": SUPPLIER},
        ledger=RunLedger(seen_text=seen),
        max_identical_calls=2,
    )


def test_the_safety_check_blocks_a_copied_example_only_when_the_rule_gives_it_the_run_text():
    verdict = _check({"supplier": "hingeco or Hinge & Co"}, "Who supplies our oak varnish?")
    assert verdict.decision == "block" and verdict.rule == "copied_example"
    assert "'hingeco or Hinge & Co' is the example in the argument's description" in verdict.reason
    assert _check({"supplier": "hingeco or Hinge & Co"}, None).rule != "copied_example"
    assert PROFILES["standard"].refuse_copied_examples
    assert not PROFILES["tiny"].refuse_copied_examples
