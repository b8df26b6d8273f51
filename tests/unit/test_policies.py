"""The tool gate and argument grounding around any chat model (``goalgraph.policies``)."""

from __future__ import annotations

from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from goalgraph import AgentSpec
from goalgraph.policies import GuardedChatModel, guard_tool_choice
from goalgraph.resources import AgentResources
from goalgraph.testing import ScriptedChatModel, tool_call


@tool
def set_alarm(hour: int, minute: int) -> str:
    """Set an alarm clock for the given time of day."""
    return ""


@tool
def get_weather(city: str) -> str:
    """Get the current weather forecast for a city."""
    return ""


def test_grounding_turns_an_invented_call_into_an_answer_on_any_model():
    inner = ScriptedChatModel(
        responses=[
            tool_call("set_alarm", hour=6, minute=0),
            tool_call("set_alarm", hour=6, minute=30),
        ]
    )
    guarded = GuardedChatModel(inner=inner, ground_arguments=True).bind_tools([set_alarm])
    invented = guarded.invoke([HumanMessage("Wake me up early tomorrow.")])
    assert not invented.tool_calls and "did not call set_alarm" in invented.text
    assert invented.response_metadata["ungrounded_call"]["invented"] == ["hour", "minute"]
    given = guarded.invoke([HumanMessage("Set an alarm for 6:30.")])
    assert given.tool_calls[0]["args"] == {"hour": 6, "minute": 30}


def test_grounding_drops_only_the_invented_calls_of_a_parallel_reply():
    from langchain_core.messages import AIMessage

    both = AIMessage(
        content="",
        tool_calls=[
            {"name": "get_weather", "args": {"city": "Rome"}, "id": "a"},
            {"name": "set_alarm", "args": {"hour": 6, "minute": 0}, "id": "b"},
        ],
    )
    inner = ScriptedChatModel(responses=[both])
    guarded = GuardedChatModel(inner=inner, ground_arguments=True)
    bound = guarded.bind_tools([set_alarm, get_weather], parallel_tool_calls=True)
    reply = bound.invoke([HumanMessage("Weather in Rome, and wake me up early.")])
    assert [call["name"] for call in reply.tool_calls] == ["get_weather"]
    assert reply.response_metadata["ungrounded_calls"][0]["name"] == "set_alarm"


def test_a_required_call_is_never_dropped():
    inner = ScriptedChatModel(responses=[tool_call("set_alarm", hour=6, minute=0)])
    guarded = GuardedChatModel(inner=inner, ground_arguments=True)
    reply = guarded.bind_tools([set_alarm], tool_choice="any").invoke("Wake me up early.")
    assert reply.tool_calls


def test_the_gate_offers_only_fitting_tools_and_none_for_an_off_topic_request():
    inner = ScriptedChatModel(responses=[tool_call("get_weather", city="Rome")])
    guarded = GuardedChatModel(inner=inner, tool_gate=0.4)
    guarded.bind_tools([set_alarm, get_weather]).invoke("Get the weather forecast for Rome")
    assert inner.tool_names[-1] == ["get_weather"]
    _, offered, _ = guarded._turn(
        [HumanMessage("Who wrote Hamlet?")],
        {"tools": [{"type": "function", "function": {"name": "set_alarm", "parameters": {}}}]},
    )
    assert offered == []


def test_the_spec_puts_any_provider_behind_the_policies():
    assert guard_tool_choice(ScriptedChatModel()).__class__ is ScriptedChatModel
    endpoint = {"provider": "openai", "base_url": "http://127.0.0.1:9/v1", "tool_gate": 0.4}
    model = AgentResources(AgentSpec(model=endpoint)).chat_model()
    assert isinstance(model, GuardedChatModel) and model.tool_gate == 0.4
