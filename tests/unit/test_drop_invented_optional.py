"""The ``drop_invented_optional`` rule: optional arguments nobody gave are left out of a call."""

from __future__ import annotations

from helpers import load_benchmark
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from goalgraph import Agent, AgentSpec
from goalgraph.eval.bfcl_data import BfclItem
from goalgraph.eval.bfcl_modes import ConstrainedSettings, run_constrained
from goalgraph.eval.records import TaskRun, record_event
from goalgraph.policies import without_invented_optional
from goalgraph.policies.grounding import trim_invented_optional
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

POPULATION = {
    "properties": {
        "species": {"type": "string"},
        "country": {"type": "string"},
        "year": {"type": "integer"},
        "exact": {"type": "boolean"},
        "unit": {"type": "string", "default": "animals"},
        "amenities": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["species", "country"],
}


def test_an_optional_value_nobody_gave_is_left_out_and_a_given_one_kept() -> None:
    question = "Estimate the population of pandas in China in 2020."
    args = {"species": "pandas", "country": "China", "year": 2023}
    assert trim_invented_optional(args, POPULATION, question) == (
        {"species": "pandas", "country": "China"},
        {"year": 2023},
    )
    args["year"] = 2020
    assert trim_invented_optional(args, POPULATION, question) == (args, {})


def test_required_default_boolean_and_unknown_arguments_are_kept() -> None:
    args = {"species": "yeti", "country": "Atlantis", "exact": True, "unit": "animals", "x": 1}
    assert trim_invented_optional(args, POPULATION, "How many pandas?") == (args, {})


def test_a_list_keeps_its_grounded_items_and_short_words_must_be_found() -> None:
    question = "Find a sushi place with a patio in Boston."
    args = {"species": "-", "country": "-", "amenities": ["Patio", "Wi-Fi", "Happy Hour"]}
    kept, left_out = trim_invented_optional(args, POPULATION, question)
    assert kept["amenities"] == ["Patio"]
    assert left_out == {"amenities": ["Patio", "Wi-Fi", "Happy Hour"]}
    args["amenities"] = ["Wi-Fi"]
    assert "amenities" not in trim_invented_optional(args, POPULATION, question)[0]
    assert trim_invented_optional(args, POPULATION, "one with wi fi")[1] == {}


def test_the_message_keeps_what_was_left_out_and_the_system_turn_grounds_nothing() -> None:
    message = AIMessage(
        "",
        tool_calls=[
            {
                "name": "estimate",
                "args": {"species": "owl", "country": "Peru", "year": 1999},
                "id": "a",
            },
            {"name": "other", "args": {"q": 1}, "id": "b"},
        ],
    )
    conversation = [SystemMessage("Years such as 1999 are fine."), HumanMessage("Owls in Peru?")]
    trimmed = without_invented_optional(message, {"estimate": POPULATION}, conversation)
    assert trimmed.tool_calls[0]["args"] == {"species": "owl", "country": "Peru"}
    assert trimmed.tool_calls[1]["args"] == {"q": 1}  # A tool without a schema: kept as is.
    assert trimmed.response_metadata["left_out_arguments"] == [
        {"call": 0, "name": "estimate", "arguments": {"year": 1999}}
    ]
    untouched = without_invented_optional(message, {"estimate": POPULATION}, [HumanMessage("1999")])
    assert untouched is message


@tool
def count_animals(species: str, year: int = 2024) -> str:
    """Count a species in a given year."""
    return f"{species} in {year}: 1864"


def _agent(chat: ScriptedChatModel, **spec: object) -> Agent:
    return Agent(
        AgentSpec(builtin_tools=False, final_answer="model", **spec),  # type: ignore[arg-type]
        model=chat,
        tools=[count_animals],
        checkpointer=InMemorySaver(),
    )


def _script() -> list[AIMessage]:
    return [
        plan(("Count the pandas", "count_animals")),
        tool_call("count_animals", species="pandas", year=1999),
        final_answer("1864 pandas"),
    ]


def test_the_agent_calls_the_tool_without_the_invented_year_under_the_rule() -> None:
    model = ScriptedChatModel(responses=_script(), goalgraph_profile="tiny")
    agent = _agent(model)
    try:
        events = list(agent.stream("How many pandas are there?"))
        call = next(e for e in events if e.kind == "tool_call")
        assert call.data["left_out"] == {"year": 1999}
        assert 'count_animals({"species": "pandas"}) (left out: {"year": 1999})' in call.describe()
        run = TaskRun(task_id="t", kind="k", model="m")
        for event in events:
            record_event(run, event)
        assert run.calls[0].left_out == {"year": 1999}
        assert run.calls[0].args == {"species": "pandas"}
        result = events[-1].result
        assert result is not None
        assert result.observations[0]["content"] == "pandas in 2024: 1864"
        calls = [
            m for m in agent.state(result.thread_id)["messages"] if getattr(m, "tool_calls", 0)
        ]
        assert calls[0].response_metadata["left_out_arguments"] == [
            {"call": 0, "name": "count_animals", "arguments": {"year": 1999}}
        ]
    finally:
        agent.close()

    model = ScriptedChatModel(responses=_script(), goalgraph_profile="tiny")
    agent = _agent(model, model={"rules": {"drop_invented_optional": False}})
    try:
        result = agent.run("How many pandas are there?")
        assert result.observations[0]["content"] == "pandas in 1999: 1864"
    finally:
        agent.close()


PANDAS_ITEM = BfclItem(
    id="simple_python_0",
    category="simple_python",
    messages=[{"role": "user", "content": "Estimate the population of pandas in China."}],
    functions=[{"name": "estimate", "description": "Estimate.", "parameters": POPULATION}],
    accepted=None,
)


def test_bfcl_constrained_mode_applies_the_rule_when_its_settings_say_so() -> None:
    item = PANDAS_ITEM
    call = tool_call("estimate", species="pandas", country="China", year=2023)
    for setting, expected in ((True, {"year": 2023}), (False, None)):
        model = ScriptedChatModel(responses=[call])
        settings = ConstrainedSettings(prune_optional=False, drop_invented_optional=setting)
        attempt = run_constrained(model, item, max_new_tokens=64, settings=settings)  # type: ignore[arg-type]
        assert (attempt.left_out_arguments or [{}])[0].get("arguments") == expected
        assert ("year" in attempt.calls[0]["estimate"]) is not setting  # type: ignore[index]


def test_the_benchmark_builds_both_arms_from_a_run_with_or_without_the_rule() -> None:
    both_arms = load_benchmark("bfcl_optional").both_arms
    item = PANDAS_ITEM
    given = [{"estimate": {"species": "pandas", "country": "China", "year": 2023}}]
    trimmed = [{"estimate": {"species": "pandas", "country": "China"}}]
    assert both_arms(item, {"calls": given}) == (given, trimmed)
    left_out = [{"call": 0, "name": "estimate", "arguments": {"year": 2023}}]
    assert both_arms(item, {"calls": trimmed, "left_out_arguments": left_out}) == (given, trimmed)
    assert both_arms(item, {"calls": []}) is None
