"""summarize_memory: keep the state small, and record the finished run as an episode."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_store

from goalgraph.nodes.common import remember_for, thread_id_of
from goalgraph.resources import AgentResources
from goalgraph.state import AgentState

__all__ = ["EPISODES_NAMESPACE", "make_summarize_memory_node", "summarize_messages"]

EPISODES_NAMESPACE = ("goalgraph", "episodes")


def summarize_messages(messages: Sequence[AnyMessage]) -> list[str]:
    """Describe tool calls and their results as one short line each."""
    lines = []
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                args = json.dumps(call["args"], separators=(",", ":"))[:120]
                lines.append(f"called {call['name']}({args})")
        elif isinstance(message, ToolMessage):
            lines.append(f"-> {str(message.content)[:160]}")
    return lines


def make_summarize_memory_node(res: AgentResources) -> Any:
    """Build the summarize_memory node over ``res``."""
    memory = res.spec.memory

    async def summarize_memory(state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """Fold old messages into the summary; at the end of a run, store the episode."""
        messages = list(state.get("messages") or [])
        keep = memory.window_messages // 2
        update: dict[str, Any] = {}
        if len(messages) > keep:
            cut = len(messages) - keep
            while cut < len(messages) and isinstance(messages[cut], ToolMessage):
                cut += 1  # Never keep a tool result without the call it answers.
            folded = messages[:cut]
            summary = "\n".join([state.get("summary") or "", *summarize_messages(folded)]).strip()
            update["summary"] = summary[-memory.summary_chars :]
            update["messages"] = [RemoveMessage(id=m.id) for m in folded if m.id]
        if state.get("status", "running") != "running":
            await _store_episode(state, config)
            await remember_for(res, state, thread_id_of(config))
        return update

    return summarize_memory


async def _store_episode(state: AgentState, config: RunnableConfig) -> None:
    try:
        store = get_store()
    except RuntimeError:
        store = None
    if store is None:
        return
    thread_id = str((config.get("configurable") or {}).get("thread_id", "default"))
    await store.aput(
        EPISODES_NAMESPACE,
        thread_id,
        {
            "goal": state.get("goal"),
            "status": state.get("status"),
            "answer": state.get("answer"),
            "plan": state.get("plan"),
            "finished_at": time.time(),
        },
    )
