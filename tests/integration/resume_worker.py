"""A run that a test kills with SIGKILL and then resumes: ``python resume_worker.py run|resume``.

Three plan steps each call the testing MCP server's ``record`` tool, which appends the step's tag
to ``$RECORD_FILE``; the test then checks that every step ran exactly once across the crash.
Environment: ``RECORD_FILE``, ``CHECKPOINT``, ``THREAD``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage

from goalgraph import Agent, AgentSpec
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call

SERVER = Path(__file__).parents[1] / "servers" / "mcp_testing_server.py"
STEPS = 3


def policy(messages: list[BaseMessage], tools: list[str]) -> AIMessage:
    """Plan three record steps, record each current step once, then answer."""
    if tools == ["Plan"]:
        return plan(*[(f"record step {n}", "record") for n in range(1, STEPS + 1)])
    if tools == ["final_answer"]:
        return final_answer("all recorded")
    current = re.search(r"Current step (\d+):", str(messages[1].content))
    assert current, "think was called without a current step"
    return tool_call("record", tag=f"step-{current.group(1)}")


def main(mode: str) -> None:
    """Run or resume the thread named by ``$THREAD`` and print the result as JSON."""
    spec = AgentSpec(
        builtin_tools=False,
        checkpoint_path=os.environ["CHECKPOINT"],
        mcpServers={
            "testing": {
                "command": sys.executable,
                "args": [str(SERVER)],
                "env": {"RECORD_FILE": os.environ["RECORD_FILE"]},
                # Trusted, or its first output would taint the run and the next record call
                # (exec: the tool carries no annotations) would wait for a human.
                "trust": "trusted",
            }
        },
    )
    model = ScriptedChatModel(policy=policy, delay_s=0.4)
    with Agent(spec, model=model) as agent:
        if mode == "run":
            result = agent.run("record three steps", thread_id=os.environ["THREAD"])
        else:
            result = agent.resume(os.environ["THREAD"])
    print(json.dumps(result.to_dict(), default=str))


if __name__ == "__main__":
    main(sys.argv[1])
