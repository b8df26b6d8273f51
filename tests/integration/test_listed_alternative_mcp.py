"""A failed call's note names the value the third-party stockroom server's error lists that the
call meant, over the real server process; the agent then takes it."""

from __future__ import annotations

import sys
from pathlib import Path

from goalgraph import Agent, AgentSpec
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

SERVERS = Path(__file__).parents[2] / "benchmarks" / "servers"


def test_the_note_names_the_listed_sku_the_call_meant(tmp_path: Path) -> None:
    state = tmp_path / "stockroom.json"
    state.write_text((SERVERS / "stockroom_seed.json").read_text(encoding="utf-8"))
    server = {"command": sys.executable, "args": [str(SERVERS / "inventory_server.py")]}
    model = ScriptedChatModel(
        responses=[
            plan(("Look up the walnut knobs", "get_product")),
            tool_call("get_product", sku="walnut knobs"),
            tool_call("get_product", sku="knob-walnut"),
            final_answer("They cost 4.20."),
        ],
        goalgraph_profile="standard",
    )
    spec = AgentSpec(
        builtin_tools=False,
        mcpServers={"stockroom": {**server, "args": [*server["args"], "--state", str(state)]}},
        checkpoint_path=tmp_path / "cp.sqlite",
        memory={"backend": "none"},
    )
    with Agent(spec, model=model) as agent:
        result = agent.run("What do walnut knobs cost?", thread_id="sku")
    assert result.status == "done", result.message
    failed, found = result.observations
    assert not failed["ok"] and "knob-walnut" in failed["content"]
    note = str(model.calls[2][-1].content)  # the retry's last message: the note (feedback_last)
    assert "did you mean sku='knob-walnut'?" in note
    assert found["ok"] and "4.2" in found["content"]
