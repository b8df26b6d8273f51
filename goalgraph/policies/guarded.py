"""``GuardedChatModel``: the tool gate and argument grounding around any chat model.

Both policies act only on a turn that may answer instead of calling (``tool_choice="auto"``):

* the gate (``goalgraph.policies.tool_gate``) offers the model only the tools that plausibly fit
  the latest user message; with none left the model answers without tools;
* grounding (``goalgraph.policies.grounding``) turns a call whose required, free-form values
  appear nowhere in the conversation into an answer, keeping the dropped call in
  ``response_metadata["ungrounded_call"]``.

They live here, not in a model class, so that they apply to every backend the same way.

Example:
    >>> chat = guard_tool_choice(LocalChatModel.from_spec(spec), gate=0.4)  # doctest: +SKIP
    >>> chat.bind_tools([get_weather]).invoke("Tell me a joke").tool_calls
    []
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from goalgraph.llm.grammar import normalize_tool_choice, to_openai_tools

__all__ = ["GuardedChatModel", "guard_tool_choice", "without_invented_optional"]


class GuardedChatModel(BaseChatModel):
    """Wraps ``inner`` and applies the tool gate and argument grounding to its tool turns."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    """The chat model that generates."""
    tool_gate: float | None = None
    """Offer only tools whose similarity to the request reaches this; ``None``: all of them."""
    ground_arguments: bool = False
    """Turn a call with invented required values into an answer."""

    @property
    def _llm_type(self) -> str:
        return f"goalgraph-guarded-{getattr(self.inner, '_llm_type', 'model')}"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools``; the inner model is bound per turn, to the tools the gate keeps."""
        return self.bind(tools=to_openai_tools(tools), tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self, schema: Any, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output is not a tool turn: the inner model's, unchanged."""
        return self.inner.with_structured_output(schema, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        runnable, tools, may_answer = self._turn(messages, kwargs)
        message = runnable.invoke(messages, stop=stop)
        return self._result(message, tools, messages, may_answer)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        runnable, tools, may_answer = self._turn(messages, kwargs)
        message = await runnable.ainvoke(messages, stop=stop)
        return self._result(message, tools, messages, may_answer)

    def _turn(
        self, messages: Sequence[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[Runnable[Any, Any], list[dict[str, Any]], bool]:
        """Return what generates this turn, the tools it offers, and whether it may answer."""
        tools: list[dict[str, Any]] = list(kwargs.pop("tools", None) or [])
        tool_choice = kwargs.pop("tool_choice", None)
        answer_only = self.inner.bind(**kwargs) if kwargs else self.inner
        if not tools:
            return answer_only, [], True
        mode = normalize_tool_choice(tool_choice, [t["function"]["name"] for t in tools])[0]
        may_answer = mode == "auto"
        if may_answer and self.tool_gate is not None:
            from goalgraph.policies.tool_gate import ToolGate

            request = next((str(m.content) for m in reversed(messages) if m.type == "human"), "")
            tools = [dict(tool) for tool in ToolGate(self.tool_gate).select(request, tools)]
            if not tools:  # Nothing fits: the model answers without tools.
                return answer_only, [], True
        return self.inner.bind_tools(tools, tool_choice=tool_choice, **kwargs), tools, may_answer

    def _result(
        self,
        message: AIMessage,
        tools: Sequence[Mapping[str, Any]],
        messages: Sequence[BaseMessage],
        may_answer: bool,
    ) -> ChatResult:
        if may_answer and self.ground_arguments and message.tool_calls:
            message = _grounded(message, tools, messages)
        return ChatResult(generations=[ChatGeneration(message=message)])


def guard_tool_choice(
    model: BaseChatModel, *, gate: float | None = None, ground: bool = False
) -> BaseChatModel:
    """Return ``model`` behind the gate and grounding, or ``model`` itself when both are off."""
    if gate is None and not ground:
        return model
    return GuardedChatModel(inner=model, tool_gate=gate, ground_arguments=ground)


def _grounded(
    message: AIMessage, tools: Sequence[Mapping[str, Any]], messages: Sequence[BaseMessage]
) -> AIMessage:
    """Return ``message`` without the calls that invent required values, or an answer in its
    place when every call does."""
    from goalgraph.policies.grounding import ungrounded_arguments

    parameters = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}
    context = _conversation(messages)
    kept, dropped = [], []
    for call in message.tool_calls:
        invented = ungrounded_arguments(call["args"], parameters.get(call["name"]) or {}, context)
        if invented:
            dropped.append({"name": call["name"], "args": call["args"], "invented": invented})
        else:
            kept.append(call)
    if not dropped:
        return message
    meta = {**message.response_metadata, "ungrounded_call": dropped[0]}
    if len(message.tool_calls) > 1:
        meta["ungrounded_calls"] = dropped
    if kept:
        return message.model_copy(update={"tool_calls": kept, "response_metadata": meta})
    first = dropped[0]
    return AIMessage(
        content=f"I did not call {first['name']}: nothing so far gives its "
        f"{', '.join(first['invented'])}.",
        additional_kwargs=message.additional_kwargs,
        usage_metadata=message.usage_metadata,
        response_metadata=meta,
    )


def without_invented_optional(
    message: AIMessage,
    parameters: Mapping[str, Mapping[str, Any]],
    messages: Sequence[BaseMessage],
) -> AIMessage:
    """Return ``message`` with each call's invented optional arguments left out, so the tool's
    defaults apply (``goalgraph.policies.grounding.trim_invented_optional``).

    What was left out is kept in ``response_metadata["left_out_arguments"]``, one entry per
    trimmed call: ``{"call": its index, "name": tool, "arguments": {name: value given}}``.

    Args:
        message: The model's turn.
        parameters: The JSON Schema of each tool's arguments, by tool name.
        messages: The conversation the turn answered (its system turn is not searched).
    """
    from goalgraph.policies.grounding import trim_invented_optional

    if not message.tool_calls:
        return message
    context = _conversation(messages)
    calls, left_out = [], []
    for index, call in enumerate(message.tool_calls):
        args, dropped = trim_invented_optional(
            call["args"], parameters.get(call["name"]) or {}, context
        )
        calls.append({**call, "args": args})
        if dropped:
            left_out.append({"call": index, "name": call["name"], "arguments": dropped})
    if not left_out:
        return message
    meta = {**message.response_metadata, "left_out_arguments": left_out}
    return message.model_copy(update={"tool_calls": calls, "response_metadata": meta})


def _conversation(messages: Sequence[BaseMessage]) -> str:
    """Return the text a value could be copied from: every turn but the system turn, which
    holds instructions, not facts."""
    return "\n".join(str(m.text) for m in messages if not isinstance(m, SystemMessage))
