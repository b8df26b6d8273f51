"""The agent over the real third-party stockroom server process: a failed call's note, and a
search that succeeds with a miss, name the value the server lists that the call meant; and a
change proposed again is not made twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from goalgraph import Agent, AgentSpec
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

SERVERS = Path(__file__).parents[2] / "benchmarks" / "servers"


def _stockroom_spec(tmp_path: Path) -> AgentSpec:
    state = tmp_path / "stockroom.json"
    state.write_text((SERVERS / "stockroom_seed.json").read_text(encoding="utf-8"))
    server = [str(SERVERS / "inventory_server.py"), "--state", str(state)]
    return AgentSpec(
        builtin_tools=False,
        mcpServers={"stockroom": {"command": sys.executable, "args": server}},
        checkpoint_path=tmp_path / "cp.sqlite",
        memory={"backend": "none"},
    )


def test_the_note_names_the_listed_sku_the_call_meant(tmp_path: Path) -> None:
    model = ScriptedChatModel(
        responses=[
            plan(("Look up the walnut knobs", "get_product")),
            tool_call("get_product", sku="walnut knobs"),
            tool_call("get_product", sku="knob-walnut"),
            final_answer("They cost 4.20."),
        ],
        goalgraph_profile="standard",
    )
    with Agent(_stockroom_spec(tmp_path), model=model) as agent:
        result = agent.run("What do walnut knobs cost?", thread_id="sku")
    assert result.status == "done", result.message
    failed, found = result.observations
    assert not failed["ok"] and "knob-walnut" in failed["content"]
    note = str(model.calls[2][-1].content)  # the retry's last message: the note (feedback_last)
    assert "did you mean sku='knob-walnut'?" in note
    assert found["ok"] and "4.2" in found["content"]


def test_a_supplier_copied_as_name_and_id_gets_the_listed_id(tmp_path: Path) -> None:
    model = ScriptedChatModel(
        responses=[
            plan(("Look up the sandpaper's supplier", "get_supplier")),
            tool_call("get_supplier", supplier="Abrasivo SA (abrasivo)"),
            tool_call("get_supplier", supplier="abrasivo"),
            final_answer("Write to the supplier."),
        ],
        goalgraph_profile="standard",
    )
    with Agent(_stockroom_spec(tmp_path), model=model) as agent:
        result = agent.run("Who supplies our sandpaper?", thread_id="display")
    assert result.status == "done", result.message
    failed, found = result.observations
    assert not failed["ok"] and "Abrasivo SA (abrasivo)" in failed["content"]
    assert "did you mean supplier='abrasivo'?" in str(model.calls[2][-1].content)
    assert found["ok"] and "email:" in found["content"]


def test_a_search_that_finds_nothing_names_the_listed_sku_it_meant(tmp_path: Path) -> None:
    model = ScriptedChatModel(
        responses=[
            plan(("Find the bar clamps", "search_products")),
            tool_call("search_products", text="bar clamps"),
            tool_call("get_product", sku="clamp-bar-60"),
            final_answer("6 in stock."),
        ],
        goalgraph_profile="standard",
    )
    with Agent(_stockroom_spec(tmp_path), model=model) as agent:
        result = agent.run("How many bar clamps are in stock?", thread_id="miss")
    assert result.status == "done", result.message
    miss, found = result.observations
    assert miss["ok"] and miss["content"].startswith("no product matches 'bar clamps'")
    assert miss["content"].endswith("did you mean text='clamp-bar-60'?")
    assert found["ok"] and "in stock: 6 units" in found["content"]


def test_a_delivery_proposed_twice_is_booked_once(tmp_path: Path) -> None:
    booking = {"sku": "screw-wood-4", "change": 500, "reason": "delivery"}
    model = ScriptedChatModel(
        responses=[
            plan(("Book the delivery of 500 wood screws", "adjust_stock")),
            tool_call("adjust_stock", **booking),
            tool_call("adjust_stock", **booking),
            final_answer("Booked: 1360 wood screws."),
        ],
        goalgraph_profile="standard",
    )
    with Agent(_stockroom_spec(tmp_path), model=model) as agent:
        result = agent.run("500 wood screws came in, please book them.", thread_id="twice")
    assert result.status == "done", result.message
    assert [o["content"] for o in result.observations] == [
        "screw-wood-4: 860 -> 1360 units (delivery)"
    ]
    stock = json.loads((tmp_path / "stockroom.json").read_text(encoding="utf-8"))
    assert stock["products"]["screw-wood-4"]["quantity"] == 1360


def test_a_supplier_copied_from_the_argument_example_is_refused(tmp_path: Path) -> None:
    model = ScriptedChatModel(
        responses=[
            plan(("Get the supplier of oak varnish", "get_supplier")),
            tool_call("get_supplier", supplier="hingeco or Hinge & Co"),  # the schema's example
            tool_call("get_product", sku="varnish-oak"),
            tool_call("get_supplier", supplier="chemco"),  # from get_product's result
            final_answer("The supplier's email."),
        ],
        goalgraph_profile="standard",
    )
    with Agent(_stockroom_spec(tmp_path), model=model) as agent:
        result = agent.run("What's the email of whoever supplies our oak varnish?", thread_id="e")
    assert result.status == "done", result.message
    assert [(o["tool"], o["ok"]) for o in result.observations] == [
        ("get_product", True),
        ("get_supplier", True),
    ]
    note = str(model.calls[2][-1].content)
    assert "'hingeco or Hinge & Co' is the example in the argument's description" in note
