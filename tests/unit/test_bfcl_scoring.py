"""BFCL scoring rules, schema conversion and plain-mode parsing, on hand-written BFCL items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from goalgraph.eval.bfcl import BfclOptions, judge, parse_settings
from goalgraph.eval.bfcl_data import (
    ARRAY_MAX_ITEMS,
    BfclDataError,
    BfclItem,
    enum_hint,
    function_tool,
    load_items,
    sample_items,
    to_json_schema,
)
from goalgraph.eval.bfcl_modes import Attempt, ConstrainedSettings, parse_plain_output
from goalgraph.eval.bfcl_report import render_markdown, render_table, summarize
from goalgraph.eval.bfcl_scoring import check_calls, check_irrelevance, normalize_string
from goalgraph.llm.grammar import NoCallStyle

AREA = {
    "name": "geometry.rectangle_area",
    "description": "Area of a rectangle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "width": {"type": "float", "description": "Width."},
            "height": {"type": "integer", "description": "Height."},
            "unit": {"type": "string", "description": "The unit. Can be 'cm' or 'inch'."},
            "labels": {"type": "array", "items": {"type": "string"}, "description": "Tags."},
            "style": {"type": "dict", "properties": {"color": {"type": "string"}}},
        },
        "required": ["width", "height"],
    },
}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string", "description": "City name."}},
        "required": ["city"],
    },
}
ACCEPTED = [
    {
        "geometry.rectangle_area": {
            "width": [3.0],
            "height": [4],
            "unit": ["cm", ""],
            "labels": [["Big Room", "north"], ""],
            "style": [{"color": ["dark red"]}, ""],
        }
    }
]


def _check(arguments: dict[str, Any], name: str = "geometry.rectangle_area") -> Any:
    return check_calls([AREA, WEATHER], [{name: arguments}], ACCEPTED)


def test_accepted_answers_pass() -> None:
    assert _check({"width": 3.0, "height": 4}).ok
    assert _check({"width": 3.0, "height": 4, "unit": "cm"}).ok
    assert _check({"width": 3.0, "height": 4, "labels": ["big room", "North"]}).ok
    assert _check({"width": 3.0, "height": 4, "style": {"color": "Dark-Red"}}).ok


def test_an_int_is_accepted_for_a_float_but_not_a_float_for_an_int() -> None:
    assert _check({"width": 3, "height": 4}).ok
    verdict = _check({"width": 3.0, "height": 4.0})
    assert not verdict.ok and verdict.kind == "wrong_type"


def test_strings_are_compared_normalised() -> None:
    assert normalize_string("New York, NY") == "newyorkny"
    assert normalize_string("A-b_c/d.e*f^g") == "abcdefg"
    assert _check({"width": 3, "height": 4, "unit": " C.M "}).ok


@pytest.mark.parametrize(
    ("arguments", "name", "kind"),
    [
        ({"width": 3.0, "height": 4}, "get_weather", "wrong_function"),
        ({"width": 3.0}, "geometry.rectangle_area", "missing_argument"),
        ({"width": 3.0, "height": 4, "depth": 2}, "geometry.rectangle_area", "extra_argument"),
        ({"width": 3.5, "height": 4}, "geometry.rectangle_area", "wrong_value"),
        ({"width": 3.0, "height": 4, "unit": "mm"}, "geometry.rectangle_area", "wrong_value"),
        ({"width": 3.0, "height": "4"}, "geometry.rectangle_area", "wrong_type"),
        (
            {"width": 3.0, "height": 4, "labels": ["north"]},
            "geometry.rectangle_area",
            "wrong_value",
        ),
        ({"width": 3, "height": 4, "style": {"size": 1}}, "geometry.rectangle_area", "wrong_value"),
    ],
)
def test_each_kind_of_mismatch_fails(arguments: dict[str, Any], name: str, kind: str) -> None:
    verdict = _check(arguments, name)
    assert not verdict.ok
    assert verdict.kind == kind


def test_an_optional_parameter_may_be_left_out_only_where_empty_is_accepted() -> None:
    strict = [{"get_weather": {"city": ["Paris"], "days": [3]}}]
    weather = {**WEATHER, "parameters": {**WEATHER["parameters"], "required": []}}
    weather["parameters"]["properties"] = {
        **WEATHER["parameters"]["properties"],
        "days": {"type": "integer"},
    }
    verdict = check_calls([weather], [{"get_weather": {"city": "paris"}}], strict)
    assert not verdict.ok and verdict.kind == "missing_argument"
    assert check_calls([weather], [{"get_weather": {"city": "paris", "days": 3}}], strict).ok


def test_exactly_one_call_is_expected() -> None:
    call = {"get_weather": {"city": "Paris"}}
    accepted = [{"get_weather": {"city": ["Paris"]}}]
    assert check_calls([WEATHER], [call], accepted).ok
    assert check_calls([WEATHER], [call, call], accepted).kind == "wrong_count"
    assert check_calls([WEATHER], [], accepted).kind == "no_call"


def test_irrelevance_passes_only_without_a_call() -> None:
    assert check_irrelevance([]).ok
    verdict = check_irrelevance([{"get_weather": {"city": "Paris"}}])
    assert not verdict.ok and verdict.kind == "call_when_none_fits"


def test_bfcl_types_become_json_schema_types() -> None:
    schema = to_json_schema(
        {
            "type": "dict",
            "properties": {
                "a": {"type": "float"},
                "b": {"type": "tuple", "items": {"type": "integer"}},
                "c": {"type": "any"},
                "d": {"type": "dict", "properties": {"e": {"type": "float"}}},
                "f": {"type": "string", "enum": ["x", "y"], "optional": True, "default": "x"},
            },
            "required": ["a", "missing"],
        }
    )
    props = schema["properties"]
    assert schema["type"] == "object" and schema["required"] == ["a"]
    assert props["a"] == {"type": "number"}
    assert props["b"] == {"type": "array", "items": {"type": "integer"}}
    assert props["c"] == {"type": "string"}
    assert props["d"]["type"] == "object" and props["d"]["properties"]["e"] == {"type": "number"}
    assert props["f"] == {"type": "string", "enum": ["x", "y"]}


def test_choice_hints_become_enums_but_examples_do_not() -> None:
    assert enum_hint("The unit. Can be 'cm' or 'inch'.") == ["cm", "inch"]
    assert enum_hint("Options are 'Standard', 'Deluxe', 'Suite'.") == [
        "Standard",
        "Deluxe",
        "Suite",
    ]
    assert enum_hint("Either celsius or fahrenheit.") == ["celsius", "fahrenheit"]
    assert enum_hint("The city, e.g. 'Paris' or 'Rome'.") is None
    assert enum_hint("The width of the room.") is None


def test_function_tool_keeps_required_and_mentioned_optional_parameters() -> None:
    tool = function_tool(AREA, question="Area of a 3 by 4 rectangle in cm? Tag it with labels.")
    params = tool["function"]["parameters"]
    assert tool["function"]["name"] == "geometry.rectangle_area"
    assert list(params["properties"]) == ["width", "height", "labels"]
    assert params["properties"]["labels"]["maxItems"] == ARRAY_MAX_ITEMS
    assert params["required"] == ["width", "height"]
    unit = function_tool(AREA, question="the unit is cm")["function"]["parameters"]["properties"]
    assert unit["unit"]["enum"] == ["cm", "inch"]
    everything = function_tool(AREA, prune_optional=False, enums_from_hints=False)
    assert "enum" not in everything["function"]["parameters"]["properties"]["unit"]
    assert len(everything["function"]["parameters"]["properties"]) == 5


def test_constrained_settings_follow_the_model_profile_and_overrides() -> None:
    tiny = ConstrainedSettings.for_profile("tiny")
    assert tiny == ConstrainedSettings()
    assert tiny.prune_optional and not tiny.parameter_notes  # measured on the 135M model
    standard = ConstrainedSettings.for_profile("standard")
    assert not standard.prune_optional and standard.parameter_notes  # the agent's view
    assert not ConstrainedSettings.for_profile("tiny", {"prune_optional": False}).prune_optional
    with pytest.raises(ValueError, match=r"unknown constrained setting.*prune"):
        ConstrainedSettings.for_profile("standard", {"prune": False})


def test_settings_read_from_the_command_line_and_checked_before_a_run(tmp_path: Path) -> None:
    assert parse_settings("prune_optional=off, parameter_notes=ON") == {
        "prune_optional": False,
        "parameter_notes": True,
    }
    assert parse_settings("") == {}
    with pytest.raises(BfclDataError, match="name=on or name=off"):
        parse_settings("prune_optional")
    with pytest.raises(BfclDataError, match="unknown constrained setting"):
        BfclOptions(data=tmp_path, constrained={"notes": True})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[get_weather(city='Paris')]", [{"get_weather": {"city": "Paris"}}]),
        ('get_weather(city="Paris")', [{"get_weather": {"city": "Paris"}}]),
        ("Sure! [get_weather('Paris')] Done.", [{"get_weather": {"city": "Paris"}}]),
        (
            "```python\n[geometry.rectangle_area(width=3, height=4, labels=['a'])]\n```",
            [{"geometry.rectangle_area": {"width": 3, "height": 4, "labels": ["a"]}}],
        ),
        (
            '{"name": "get_weather", "arguments": {"city": "Paris"}}',
            [{"get_weather": {"city": "Paris"}}],
        ),
        ('Answer: {"get_weather": {"city": "Paris"}}', [{"get_weather": {"city": "Paris"}}]),
        ("[get_weather(city=home)]", [{"get_weather": {"city": "home"}}]),
        ("[]", []),
    ],
)
def test_plain_output_parses_calls(text: str, expected: list[dict[str, Any]]) -> None:
    assert parse_plain_output(text, [WEATHER, AREA]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "The weather in Paris is sunny.",
        "get_weather(city='Paris'",
        "{not json}",
        "[1, 2]",
        "```python\ndef get_weather(city):\n    return city\n```",
    ],
)
def test_garbage_is_unparsable(text: str) -> None:
    assert parse_plain_output(text, [WEATHER]) is None


def _write_items(folder: Path) -> None:
    (folder / "possible_answer").mkdir(parents=True)
    question = {"role": "user", "content": "Weather in Paris?"}
    rows = [
        {"id": f"simple_python_{i}", "question": [[question]], "function": [WEATHER]}
        for i in range(5)
    ]
    answers = [
        {"id": r["id"], "ground_truth": [{"get_weather": {"city": ["Paris"]}}]} for r in rows
    ]
    (folder / "BFCL_v4_simple_python.json").write_text("\n".join(map(json.dumps, rows)))
    (folder / "possible_answer" / "BFCL_v4_simple_python.json").write_text(
        "\n".join(map(json.dumps, answers))
    )


def test_items_load_and_sample_deterministically(tmp_path: Path) -> None:
    _write_items(tmp_path)
    items = load_items(tmp_path, "simple_python")
    assert [item.id for item in items][:2] == ["simple_python_0", "simple_python_1"]
    assert items[0].question == "Weather in Paris?"
    assert items[0].accepted == [{"get_weather": {"city": ["Paris"]}}]
    first = [item.id for item in sample_items(items, 3, seed=7)]
    assert first == [item.id for item in sample_items(items, 3, seed=7)]
    assert len(first) == 3 and first == sorted(first, key=lambda i: int(i.rsplit("_", 1)[1]))
    assert len(sample_items(items, None)) == 5


def test_missing_data_and_unknown_categories_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BfclDataError, match="not found"):
        load_items(tmp_path / "nowhere", "simple_python")
    with pytest.raises(BfclDataError, match="unknown BFCL category 'live_simple'"):
        load_items(tmp_path, "live_simple")
    with pytest.raises(BfclDataError, match=r"BFCL_v4_multiple\.json"):
        load_items(tmp_path, "multiple")


def test_summary_and_tables_report_every_mode_and_failure_kind() -> None:
    def record(mode: str, category: str, ok: bool, kind: str | None) -> dict[str, Any]:
        return {
            "mode": mode,
            "category": category,
            "ok": ok,
            "kind": kind,
            "parsable": kind != "unparsable",
            "hit_token_limit": False,
            "seconds": 1.0,
        }

    records = [
        record("constrained", "simple_python", True, None),
        record("constrained", "simple_python", False, "wrong_value"),
        record("constrained", "irrelevance", True, None),
        record("plain", "simple_python", False, "unparsable"),
        record("plain", "irrelevance", True, None),
    ]
    summary = summarize(records)
    assert summary["constrained"]["categories"]["simple_python"]["accuracy"] == 0.5
    assert summary["constrained"]["relevance_irrelevance_mean"] == 0.75
    assert summary["plain"]["parsable"] == 0.5
    assert summary["plain"]["failures"] == {"unparsable": 1}
    table = "\n".join(render_table(summary))
    assert "wrong_value 1" in table and "50.0%" in table
    assert "| simple_python | plain |" in render_markdown(summary, title="t", command="c")


@pytest.mark.parametrize("style", ["response", "decision", "option"])
def test_no_call_styles_shape_the_answer_branch_and_its_instruction(style: NoCallStyle) -> None:
    from goalgraph.llm.chat import tools_instruction
    from goalgraph.llm.grammar import NO_TOOL, tool_call_schema

    tools = [function_tool(WEATHER)]
    schema = tool_call_schema(tools, thought=False, no_call=style)
    call, answer = schema["anyOf"]
    instruction = tools_instruction(tools, thought=False, no_call=style)
    if style == "decision":
        assert list(call["properties"]) == ["use_tool", "name", "arguments"]
        assert answer["properties"]["use_tool"] == {"const": False}
        assert '"use_tool": false' in instruction
    elif style == "option":
        assert answer["properties"]["name"] == {"const": NO_TOOL}
        assert f"- {NO_TOOL}:" in instruction
    else:
        assert list(answer["properties"]) == ["response"]
        assert "To answer directly" in instruction
    required = tool_call_schema(tools, tool_choice="any", thought=False, no_call=style)
    assert list(required["properties"]) == ["name", "arguments"]


def test_a_constrained_call_cut_off_by_the_token_limit_still_counts_on_irrelevance() -> None:
    item = BfclItem("irrelevance_0", "irrelevance", [], [WEATHER], None)
    cut = Attempt(
        None, '{"use_tool": true, "name": "get_weather", "argu', True, 1.0, 96, "get_weather"
    )
    rambling = Attempt(None, "It is sunny in Paris and", True, 1.0, 96)
    assert judge(item, cut).kind == "call_when_none_fits"
    assert judge(item, rambling).ok
