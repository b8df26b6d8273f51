"""A team run paused for approval in one process and decided in another:
``python team_worker.py run|approve|deny``.

A pipeline researcher -> writer over a SQLite checkpoint; the writer's ``write_note`` needs
approval. The scripted policy answers by the prompt, so a fresh process continues the same script.
Environment: ``CHECKPOINT``, ``THREAD``.
"""

from __future__ import annotations

import json
import os
import sys

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool

from goalgraph import AgentSpec, Team
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return "4" if expression == "2+2" else "?"


@tool
def write_note(text: str) -> str:
    """Write a note."""
    return f"wrote {len(text)} characters"


def policy(messages: list[BaseMessage], tools: list[str]) -> AIMessage:
    """Researcher: compute 2+2; writer: save the note, then say whether it was saved."""
    prompt = " ".join(str(message.content) for message in messages)
    writer = "Write it up." in prompt
    if tools == ["Plan"]:
        return plan(("save it", "write_note") if writer else ("compute", "calculator"))
    observed = [m for m in messages if isinstance(m, ToolMessage)]
    if not observed:
        return (
            tool_call("write_note", text="4")
            if writer
            else tool_call("calculator", expression="2+2")
        )
    if not writer:
        return final_answer("4")
    return final_answer("saved" if "wrote" in str(observed[-1].content) else "not saved")


def main(mode: str) -> None:
    """Run the team, or decide its pending approval, and print the result as JSON."""
    spec = AgentSpec(
        builtin_tools=False,
        final_answer="model",
        checkpoint_path=os.environ["CHECKPOINT"],
        agents={
            "researcher": {"instructions": "Find facts."},
            "writer": {
                "instructions": "Write it up.",
                "safety": {"require_approval": ["write_note"]},
            },
        },
        team={"pattern": "pipeline", "stages": ["researcher", "writer"]},
    )
    model = ScriptedChatModel(policy=policy, goalgraph_profile="tiny")
    with Team(spec, model=model, tools=[calculator, write_note]) as team:
        if mode == "run":
            result = team.run("compute and save", thread_id=os.environ["THREAD"])
        else:
            result = team.resume(os.environ["THREAD"], approve=mode == "approve", reason="checked")
    print(json.dumps(result.to_dict(), default=str))


if __name__ == "__main__":
    main(sys.argv[1])
