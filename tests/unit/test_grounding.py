"""Argument grounding: which call values the conversation supports."""

from __future__ import annotations

from typing import Any

import pytest

from goalgraph.policies.grounding import mentioned_numbers, ungrounded_arguments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cash flows of -$100, $40", {-100.0, 40.0}),
        ("between 5-10 apples", {5.0, 10.0}),  # a range, not minus ten
        ("charges of 1e-9 and 2e-9", {1e-9, 2e-9}),
        ("a rate of 3%", {3.0, 0.03}),
        ("revenues of $1.2M", {1.2, 1.2e6}),
        ("falling 100 m", {100.0}),  # metres: no "$", no scale
        ("2 million people", {2.0, 2e6}),
        ("scores [22,33,42]", {22.0, 33.0, 42.0, 223342.0}),
        ("1,000 cars", {1000.0, 1.0, 0.0}),
        ("on Jun.20,2023", {20.0, 2023.0, 202023.0}),
        ("five apples and twelve pears", {5.0, 12.0}),
        ("an answer", set()),
    ],
)
def test_mentioned_numbers(text: str, expected: set[float]) -> None:
    assert sorted(mentioned_numbers(text)) == pytest.approx(sorted(expected))


def _schema(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


NUMBER = {"type": "number"}
STRING = {"type": "string"}


@pytest.mark.parametrize(
    ("arguments", "context", "invented"),
    [
        ({"x": 49}, "What is the square root of 49?", []),
        ({"x": 7}, "What is the square root of 49?", ["x"]),
        ({"x": 100}, "cash flows of -$100", ["x"]),  # the sign is part of the value
        ({"x": 0.05}, "at 5% interest", []),
        ({"x": 2e-9}, "a charge of 1e-9", ["x"]),
        ({"x": "Lion"}, "What do lions eat?", []),
        ({"x": "New York, NY"}, "Restaurants in New York", []),  # short words are not checked
        ({"x": "Boston"}, "Restaurants in New York", ["x"]),
        ({"x": "puzzle_image.png"}, "Create a jigsaw puzzle", ["x"]),
        ({"x": "2022-03-11"}, "closing price on March.11, 2022", []),
        ({"x": "06-01-2023"}, "UV index for June01 2023", []),
        ({"x": "2022-01-01"}, "Who plays cricket today?", ["x"]),
        ({"x": "10"}, "How do I boil an egg?", ["x"]),  # a number written as a string
        ({"x": [1, 2, 3]}, "the average of 1, 2 and 3", []),
        ({"x": [1, 2, 3, 4]}, "the average of 1, 2 and 3", ["x"]),
        ({"x": {"city": "Paris", "days": 3}}, "three days in Paris", []),
    ],
)
def test_a_required_value_must_come_from_the_context(
    arguments: dict[str, Any], context: str, invented: list[str]
) -> None:
    schema = _schema(x={"type": "array"} if isinstance(arguments["x"], list) else STRING)
    assert ungrounded_arguments(arguments, schema, context) == invented


def test_confined_optional_and_default_values_are_not_checked() -> None:
    schema = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["metric", "imperial"]},
            "exact": {"type": "boolean"},
            "precision": {"type": "integer", "default": 2},
            "note": STRING,
            "value": NUMBER,
        },
        "required": ["unit", "exact", "precision", "value"],
    }
    arguments = {"unit": "imperial", "exact": True, "precision": 2, "note": "x", "value": 3}
    assert ungrounded_arguments(arguments, schema, "Convert 3 km") == []
    assert ungrounded_arguments({**arguments, "precision": 4}, schema, "Convert 3 km") == [
        "precision"
    ]
    assert ungrounded_arguments({**arguments, "value": 4}, schema, "Convert 3 km") == ["value"]


def test_a_schema_without_properties_checks_nothing() -> None:
    assert ungrounded_arguments({"x": 1}, {}, "") == []
