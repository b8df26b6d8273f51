"""A chat model over an OpenAI-compatible HTTP endpoint: vLLM, llama.cpp server, TGI, Ollama or
``goalgraph serve-model``.

The client is ``langchain-openai``'s ``ChatOpenAI``, pointed at ``spec.base_url``. Two choices make
it behave like ``LocalChatModel`` for the agent's nodes:

* ``with_structured_output`` defaults to ``method="json_schema"``: the schema travels as
  ``response_format={"type": "json_schema", ...}``, which vLLM (guided decoding), llama.cpp server
  (GBNF from the schema), SGLang and ``goalgraph serve-model`` (xgrammar) all *enforce* while
  decoding, with no server flags. ``function_calling`` would instead rely on the server's
  tool-call parser (vLLM needs ``--enable-auto-tool-choice --tool-call-parser ...``), and a model
  that answers in prose instead of calling the tool yields no structured output at all.
* ``bind_tools(..., tool_choice=...)`` sends OpenAI's ``tool_choice`` (``"any"`` becomes
  ``"required"``, a tool's name becomes ``{"type": "function", "function": {"name": ...}}``);
  vLLM constrains both forms with guided decoding.

An endpoint that cannot be reached raises ``EndpointError`` naming the URL; inside the agent that
becomes a failed model turn, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI

from goalgraph.spec import ModelSpec

__all__ = ["EndpointChatModel", "EndpointError", "endpoint_chat_model"]

DEFAULT_TIMEOUT_S = 300.0
"""Seconds one request may take: CPU-served models are slow, a dead server is not waited on."""
DEFAULT_MAX_RETRIES = 1
"""Retries of a failed request (connection errors, 429, 5xx), with the client's backoff."""


class EndpointError(ConnectionError):
    """The OpenAI-compatible endpoint could not be reached or timed out."""


class EndpointChatModel(ChatOpenAI):
    """``ChatOpenAI`` with goalgraph's defaults and clear errors for an unreachable endpoint."""

    def with_structured_output(
        self,
        schema: Any = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Decode to ``schema``; ``json_schema`` (the default) is grammar-enforced by servers.

        See the module docstring for why ``json_schema`` rather than ``function_calling``.
        """
        return super().with_structured_output(
            schema, method=method, include_raw=include_raw, strict=strict, **kwargs
        )

    def _explain(self, exc: Exception) -> EndpointError:
        kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "is unreachable"
        return EndpointError(
            f"the model endpoint at {self.openai_api_base} {kind} ({type(exc).__name__}: {exc}); "
            "is the server running? (e.g. goalgraph serve-model)"
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        except openai.APIConnectionError as exc:  # Includes APITimeoutError.
            raise self._explain(exc) from exc

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            return await super()._agenerate(messages, stop, run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            raise self._explain(exc) from exc

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
        except openai.APIConnectionError as exc:
            raise self._explain(exc) from exc

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        try:
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk
        except openai.APIConnectionError as exc:
            raise self._explain(exc) from exc


def endpoint_chat_model(
    spec: ModelSpec,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> BaseChatModel:
    """Return a chat model for ``spec`` (provider ``openai``) talking to ``spec.base_url``.

    Args:
        spec: ``name`` is the model the endpoint serves; ``api_key`` falls back to
            ``$OPENAI_API_KEY``, then to a placeholder (local servers ignore it).
        timeout_s: Seconds one request may take.
        max_retries: Retries of a failed request.

    Raises:
        ValueError: ``spec`` is not an ``openai`` spec with a ``base_url``.
    """
    if spec.provider != "openai" or not spec.base_url:
        raise ValueError("endpoint_chat_model needs provider 'openai' and a base_url")
    api_key = spec.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
    return EndpointChatModel(
        base_url=spec.base_url,
        model=spec.name,
        api_key=api_key,  # type: ignore[arg-type]  # str is accepted and wrapped in SecretStr.
        temperature=spec.temperature,
        max_tokens=spec.max_new_tokens,  # type: ignore[call-arg]  # An alias of max_completion_tokens.
        timeout=timeout_s,
        max_retries=max_retries,
    )
