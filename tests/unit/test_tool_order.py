"""The planner's catalog sorted by relevance to the goal (the ``rank_tools`` rule)."""

from __future__ import annotations

import numpy as np
from helpers import calculator, read_file
from langchain_core.tools import tool

from goalgraph.nodes.plan import plan_messages
from goalgraph.policies.tool_gate import ToolGate
from goalgraph.profiles import resolve_profile
from goalgraph.tool_order import by_relevance


@tool
def get_weather(city: str) -> str:
    """Return the weather forecast for a city."""
    return f"sunny in {city}"


TOOLS = [calculator, read_file, get_weather]


def embed_by_keyword(texts: list[str]) -> np.ndarray:
    """Unit vectors along the axis of the first keyword a text contains (else a fourth axis)."""
    axes = {"weather": 0, "read": 1, "calculator": 2}
    vectors = np.zeros((len(texts), 4), dtype=np.float32)
    for row, text in enumerate(texts):
        vectors[row, next((i for word, i in axes.items() if word in text.lower()), 3)] = 1.0
    return vectors


def names(tools) -> list[str]:
    return [t.name for t in tools]


def test_the_most_relevant_tool_comes_first_and_ties_keep_the_servers_order():
    gate = ToolGate(embed=embed_by_keyword)
    assert names(by_relevance("what's the weather in Oslo", TOOLS, gate=gate)) == [
        "get_weather",
        "calculator",
        "read_file",
    ]
    assert names(by_relevance("nothing matches", TOOLS, gate=gate)) == names(TOOLS)


def test_a_failing_embedder_keeps_the_catalog_as_it_was():
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("no model")

    assert names(by_relevance("weather", TOOLS, gate=ToolGate(embed=broken))) == names(TOOLS)
    assert by_relevance("weather", [calculator]) == [calculator]


def test_real_minilm_puts_the_fitting_tool_first_in_the_planner_prompt():
    ranked = resolve_profile("standard", {"rank_tools": True})
    goal = "Will it rain in Oslo tomorrow?"
    system = plan_messages(goal, TOOLS, profile=ranked)[0].content
    assert system.index("- get_weather(") < system.index("- calculator(")
    assert system.index("- get_weather(") < system.index("- read_file(")
    plain = plan_messages(goal, TOOLS, profile=resolve_profile("standard"))[0].content
    assert plain.index("- calculator(") < plain.index("- get_weather(")
