"""A scripted chat model for testing graphs without a real model, shipped for users' tests too.

Example:
    >>> from goalgraph.testing import ScriptedChatModel, plan, tool_call, final_answer
    >>> model = ScriptedChatModel(
    ...     responses=[plan(("Add the numbers", "calculator")), tool_call("calculator",
    ...     expression="2+2"), final_answer("4")]
    ... )

``ScriptedChatModel`` answers each call with the next scripted ``AIMessage`` (or, with ``policy``,
with whatever a function of the prompt returns). It supports ``bind_tools`` and therefore
``with_structured_output``: a plan is scripted as a call of the ``Plan`` tool.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = [
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "final_answer",
    "garbage",
    "plan",
    "step_done",
    "tool_call",
]

Policy = Callable[[list[BaseMessage], list[str]], AIMessage]


class ScriptExhaustedError(RuntimeError):
    """The scripted model was called more often than it has responses."""


class ScriptedChatModel(BaseChatModel):
    """A chat model that replays a script of responses, for deterministic tests.

    Attributes:
        responses: ``AIMessage``s returned in order, one per call.
        policy: Instead of ``responses``, a function ``(messages, bound_tool_names) -> AIMessage``.
        delay_s: Seconds each call sleeps, to imitate model time.
        goalgraph_profile: The profile ``model.profile: auto`` picks for it (``tiny`` or
            ``standard``); ``None`` means ``standard``, as for any model given in code.
        goalgraph_rules: Profile rules it states for itself (``goalgraph.profiles``): by
            default ``plan_first_call`` is off, because a script answers the planner's first
            request with its plan; ``{}`` scripts that first call too.
        calls: Every prompt received, in order (for assertions).
        tool_names: The tool names bound on each call, in order.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: list[AIMessage] = Field(default_factory=list)
    policy: Policy | None = None
    delay_s: float = 0.0
    goalgraph_profile: str | None = None
    goalgraph_rules: dict[str, bool] = Field(default_factory=lambda: {"plan_first_call": False})
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    tool_names: list[list[str]] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "goalgraph-scripted"

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; only their names are kept (the script decides what is called)."""
        names = [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]
        return self.bind(bound_tools=names, **kwargs)

    def _next(self, messages: list[BaseMessage], bound_tools: list[str]) -> AIMessage:
        with self._lock:
            self.calls.append(list(messages))
            self.tool_names.append(list(bound_tools))
            if self.policy is not None:
                return self.policy(list(messages), list(bound_tools))
            if not self.responses:
                raise ScriptExhaustedError(
                    f"scripted model has no response left for call {len(self.calls)}"
                )
            return self.responses.pop(0)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        bound_tools: list[str] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        message = self._next(messages, bound_tools or [])
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        bound_tools: list[str] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        message = self._next(messages, bound_tools or [])
        return ChatResult(generations=[ChatGeneration(message=message)])


def tool_call(name: str, thought: str = "", **args: Any) -> AIMessage:
    """Return an ``AIMessage`` that calls tool ``name`` with ``args``."""
    return AIMessage(
        content=thought,
        tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}"}],
    )


def plan(*steps: str | tuple[str, str | None] | dict[str, Any]) -> AIMessage:
    """Return a scripted plan: each step is a description, ``(description, tool)`` or a dict."""
    rendered = []
    for step in steps:
        if isinstance(step, dict):
            rendered.append({"depends_on": [], "success_criteria": "", "tool": "none", **step})
            continue
        description, tool = (step, None) if isinstance(step, str) else step
        rendered.append(
            {
                "description": description,
                "tool": tool or "none",
                "depends_on": [],
                "success_criteria": "",
            }
        )
    return tool_call("Plan", steps=rendered)


def step_done(result: str) -> AIMessage:
    """Return an ``AIMessage`` that marks the current step done with ``result``."""
    return tool_call("step_done", result=result)


def final_answer(answer: str) -> AIMessage:
    """Return an ``AIMessage`` that gives the final answer."""
    return tool_call("final_answer", answer=answer)


def garbage(text: str = "%%%% no json here") -> AIMessage:
    """Return an ``AIMessage`` without any tool call: a model that emits garbage."""
    return AIMessage(content=text)
