"""``LocalChatModel``: a LangChain chat model over a local transformers text-generation pipeline.

Generation goes through ``langchain_huggingface.HuggingFacePipeline``. Tool calling and structured
output are grammar-constrained: the prompt shows the model what to write, and an xgrammar logits
processor (passed to the pipeline as ``logits_processor``) makes anything else impossible.

The static prompt prefix (the system turn: instructions plus the tool list) is encoded once per
model and prefix and its KV cache reused (``prefix_cache``); see ``goalgraph.llm.prefix_cache``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    FunctionMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_huggingface import HuggingFacePipeline
from pydantic import BaseModel

from goalgraph.llm.budget import fit_turns
from goalgraph.llm.cache import CacheRequest, GenerationCache, semantic_task
from goalgraph.llm.drafting import DRAFT_KWARG, DraftStats, drafting_enabled, enable_drafting
from goalgraph.llm.grammar import (
    NO_TOOL,
    THOUGHT_MAX_LENGTH,
    GrammarCache,
    NoCallStyle,
    ParallelSchemas,
    ToolDecision,
    normalize_tool_choice,
    parallel_call_schemas,
    parse_tool_calls,
    parse_tool_output,
    schema_outline,
    structured_output_schema,
    to_openai_tools,
    tool_call_schema,
)
from goalgraph.llm.ladder import ladder_rules
from goalgraph.llm.loader import BUNDLED_MODEL, load_local_model
from goalgraph.llm.native_tools import (
    ANSWER_OR_CALL,
    CALL_ONLY,
    native_call_schema,
    native_turns,
    parse_native_calls,
    parse_native_output,
    plain_turn,
    template_has_tool_calls,
)
from goalgraph.llm.prefix_cache import PrefixCache, PrefixCacheStats
from goalgraph.profiles import TINY_MAX_PARAMETERS
from goalgraph.spec import ModelSpec

__all__ = ["LocalChatModel", "json_instruction", "to_chat_turns", "tools_instruction"]

Mode = Literal["text", "tools", "json"]


class LocalChatModel(BaseChatModel):
    """Chat with a local Hugging Face model; tool calls and structured output are grammar-bound.

    Generation runs through ``HuggingFacePipeline``; ``_agenerate`` and ``_astream`` run it in a
    worker thread so the event loop stays free. Streamed text arrives in word-sized chunks
    (transformers' ``TextIteratorStreamer``); a tool-calling turn streams as one final chunk.

    Example:
        ```python
        chat = LocalChatModel.from_spec(ModelSpec(max_new_tokens=128))
        reply = chat.bind_tools([calculator], tool_choice="any").invoke("What is 6*7?")
        reply.tool_calls  # [{"name": "calculator", "args": {"expression": "6*7"}, ...}]
        plan = chat.with_structured_output(Plan).invoke("Goal: bake bread")
        ```
    """

    llm: HuggingFacePipeline
    """The LangChain wrapper around the transformers text-generation pipeline."""
    model_name: str = BUNDLED_MODEL
    """The name the model was loaded under (reported in response metadata)."""
    max_new_tokens: int = 256
    """Upper bound on generated tokens per call (override per call with ``max_new_tokens=``)."""
    temperature: float = 0.0
    """0 decodes greedily; above 0 samples at this temperature."""
    thought: bool = True
    """Make a tool-calling turn start with a short ``thought`` string (becomes the content)."""
    thought_max_length: int | None = THOUGHT_MAX_LENGTH
    """Characters the thought may use; ``None`` lifts the cap (and compiles grammars faster)."""
    thought_max_tokens: int | None = 48
    """Tokens the thought may use before it is closed (digits cost a token each)."""
    no_call: NoCallStyle = "response"
    """How a turn that may call a tool or answer marks the answer: ``response`` (its own
    ``"response"`` key), ``decision`` (a first ``"use_tool": true|false`` field) or ``option``
    (a pseudo-tool ``no_tool``); see ``goalgraph.llm.grammar.tool_call_schema``."""
    tool_format: Literal["auto", "json", "native"] = "auto"
    """How tools are shown and calls written: ``native``, the chat template's own format
    (``tools=`` in the system turn, ``<tool_call>`` calls, ``tool`` turns; see
    ``goalgraph.llm.native_tools``), ``json``, goalgraph's generic JSON format for templates
    without tool support, or ``auto``: ``native`` when the template has it. Both are decoded
    under the grammar."""
    context_tokens: int | None = None
    """Context window in tokens; ``None`` reads the model config (8,192 for SmolLM2). Prompts
    are fitted to it minus ``max_new_tokens`` (see ``goalgraph.llm.budget``)."""
    prefix_cache: bool = True
    """Encode the system turn once and reuse its KV cache on later calls that share it."""
    draft_tokens: int = 10
    """Assisted decoding (``goalgraph.llm.drafting``): each forward pass checks a draft of the
    text the grammar fixes or, failing that, up to this many tokens copied from the prompt;
    ``0`` decodes one token per pass."""
    generation_cache: GenerationCache | None = None
    """Answer repeated greedy ``invoke`` calls from ``goalgraph.llm.cache`` (streaming bypasses
    it; ``None`` disables it). ``from_spec`` sets it from ``spec.cache``."""
    max_parallel_calls: int = 4
    """Most tool calls one reply may carry when tools are bound with
    ``parallel_tool_calls=True`` (otherwise a reply carries at most one). The grammar holds a copy
    of the call grammar per call, so a larger bound costs compile time (milliseconds in the
    native format)."""

    @classmethod
    def from_spec(cls, spec: ModelSpec, **overrides: Any) -> LocalChatModel:
        """Load (or reuse) the model a ``ModelSpec`` names and wrap it.

        Args:
            spec: Model settings; ``spec.threads`` sets torch's process-wide CPU thread count.
            **overrides: Field values that replace the spec's (e.g. ``thought=False``).

        Raises:
            ModelLoadError: The model cannot be loaded.
            ValueError: The spec's provider is not ``local``.
        """
        if spec.provider != "local":
            raise ValueError(f"LocalChatModel serves provider 'local', not {spec.provider!r}")
        if spec.threads:
            import torch

            torch.set_num_threads(spec.threads)
        model, tokenizer, _ = load_local_model(spec.name, device=spec.device, dtype=spec.dtype)
        fields: dict[str, Any] = {
            "model_name": spec.name,
            "max_new_tokens": spec.max_new_tokens,
            "temperature": spec.temperature,
            "thought": spec.thought,
            "prefix_cache": spec.prefix_cache,
            "draft_tokens": spec.draft_tokens,
            "tool_format": spec.tool_format,
            **overrides,
        }
        if "generation_cache" not in fields:
            fields["generation_cache"] = GenerationCache.from_spec(spec.cache)
        return cls.from_model(model, tokenizer, **fields)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, **fields: Any) -> LocalChatModel:
        """Wrap an already loaded transformers model and tokenizer.

        Args:
            model: A causal LM, already on its device.
            tokenizer: Its tokenizer (with a chat template, ideally).
            **fields: Other ``LocalChatModel`` fields.
        """
        from transformers import pipeline

        fields.setdefault("model_name", str(getattr(model, "name_or_path", "") or "local"))
        pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
        enable_drafting(model, tokenizer)
        llm = HuggingFacePipeline(
            pipeline=pipe,
            model_id=fields["model_name"],
            batch_size=1,
            # The chat model is the cache boundary; caching the inner LLM too would store
            # every prompt twice.
            cache=False,
        )
        return cls(llm=llm, **fields)

    @property
    def _llm_type(self) -> str:
        return "goalgraph-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "thought": self.thought,
            "thought_max_length": self.thought_max_length,
            "thought_max_tokens": self.thought_max_tokens,
            "no_call": self.no_call,
            "tool_format": self.tool_format,
        }

    @property
    def tokenizer(self) -> Any:
        """Return the Hugging Face tokenizer."""
        return self.llm.pipeline.tokenizer

    @property
    def hf_model(self) -> Any:
        """Return the underlying transformers model."""
        return self.llm.pipeline.model

    def uses_native_tools(self) -> bool:
        """Tell whether tool calls use the chat template's own format (``tool_format``)."""
        if self.tool_format == "auto":
            return template_has_tool_calls(self.tokenizer)
        return self.tool_format == "native"

    @property
    def goalgraph_rules(self) -> dict[str, bool]:
        """Return the profile rules measured for this model when it is a ladder model
        (``goalgraph.llm.ladder``), else none."""
        return ladder_rules(self.model_name)

    @property
    def goalgraph_profile(self) -> str:
        """Return the agent profile ``auto`` picks for this model: ``tiny`` under
        ``TINY_MAX_PARAMETERS`` parameters, else ``standard`` (``goalgraph.profiles``)."""
        count = sum(parameter.numel() for parameter in self.hf_model.parameters())
        return "tiny" if count < TINY_MAX_PARAMETERS else "standard"

    @property
    def prefix_cache_stats(self) -> PrefixCacheStats:
        """Return the hit/miss counters of the prefix cache shared by this model's wrappers."""
        return PrefixCache.for_model(self.hf_model).stats

    @property
    def draft_stats(self) -> DraftStats:
        """Return what assisted decoding drafted and saved, over every wrapper of this model."""
        return DraftStats.for_model(self.hf_model)

    # -- binding ------------------------------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools so every reply is a schema-valid call to one of them (or, maybe, an answer).

        The grammar is compiled here, so the first call does not pay for it.

        Args:
            tools: LangChain tools, pydantic classes, functions or OpenAI-format dicts.
            tool_choice: ``None``/``"auto"`` (call or answer), ``"any"``/``"required"``/``True``
                (must call), ``"none"`` (must answer) or one tool's name.
            **kwargs: Passed to every call (e.g. ``max_new_tokens``). ``parallel_tool_calls=True``
                lets a reply carry 1 to ``max_parallel_calls`` calls, each schema-valid, one
                after another (a newline between them); an answer still stands alone. Absent or
                false, a reply carries at most one call. ``strict`` is accepted and ignored
                (always strict).

        Raises:
            ValueError: Duplicate tool names or a ``tool_choice`` that names no bound tool.
        """
        formatted = to_openai_tools(tools)
        parallel = bool(kwargs.pop("parallel_tool_calls", None)) and self.max_parallel_calls > 1
        kwargs.pop("strict", None)
        if parallel:
            kwargs["parallel_tool_calls"] = True
        if (
            normalize_tool_choice(tool_choice, [t["function"]["name"] for t in formatted])[0]
            != "none"
            and not self.uses_native_tools()  # Its tagged grammar compiles in milliseconds.
        ):
            if parallel:
                grammars = self._grammars()
                schemas = self._parallel_schemas(formatted, tool_choice)
                grammars.compile_calls(schemas, max_calls=self.max_parallel_calls)
                grammars.string_budget(max_new_tokens=self.max_new_tokens)
            else:
                self._warm_up(self._tool_schema(formatted, tool_choice))
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: Any,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Return a runnable whose output is decoded to exactly ``schema``.

        Args:
            schema: A pydantic class (returns an instance), a TypedDict or a JSON-schema dict
                (returns a dict).
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising on a parse failure.
            **kwargs: ``method`` is accepted for compatibility: every method decodes under a
                grammar. Anything else is an error.

        Raises:
            ValueError: An unsupported keyword argument.
        """
        method = kwargs.pop("method", None)
        if method not in (None, "json_schema", "json_mode", "function_calling"):
            raise ValueError(f"unsupported method {method!r}")
        kwargs.pop("strict", None)
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        json_schema = structured_output_schema(schema)
        self._warm_up(json_schema)
        llm = self.bind(
            response_format=json_schema,
            ls_structured_output_format={
                "kwargs": {"method": "json_schema"},
                "schema": json_schema,
            },
        )
        parser: Runnable[Any, Any]
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            parser = PydanticOutputParser(pydantic_object=schema)
        else:
            parser = JsonOutputParser()
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [unparsed], exception_key="parsing_error"
        )

    # -- generation ---------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, kwargs)
        request = self._cache_request(call, messages)
        hit = self.generation_cache.lookup(request) if self.generation_cache and request else None
        if hit is not None:
            call.counter.count = hit.output_tokens
            message = self._finish(call, hit.text)
            message.response_metadata["cache"] = hit.tier
            return ChatResult(generations=[ChatGeneration(message=message)])
        self._attach_prefix(call)
        result = self.llm.generate([call.prompt], pipeline_kwargs=call.pipeline_kwargs)
        text = result.generations[0][0].text
        message = self._finish(call, text)
        if self.generation_cache and request:
            self.generation_cache.store(request, text, output_tokens=call.counter.count)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, kwargs)
        self._attach_prefix(call)
        if call.mode == "tools":
            # Half a tool call is of no use to a consumer (and LangGraph's "messages" stream
            # mode routes invoke() through here): decode it whole and emit one final chunk.
            result = self.llm.generate([call.prompt], pipeline_kwargs=call.pipeline_kwargs)
            message = self._finish(call, result.generations[0][0].text)
            yield ChatGenerationChunk(message=_as_last_chunk(message))
            return
        pieces = _StopFilter(call.stop)
        # HuggingFacePipeline.stream passes stopping criteria of its own, so the counter's
        # cannot go along; the streamed text is counted instead (without the end-of-turn token).
        kwargs = {k: v for k, v in call.pipeline_kwargs.items() if k != "stopping_criteria"}
        for piece in self.llm.stream(call.prompt, pipeline_kwargs=kwargs):
            text = pieces.feed(piece)
            if text:
                yield self._emit(text, run_manager)
            if pieces.stopped:
                break
        tail = pieces.flush()
        if tail:
            yield self._emit(tail, run_manager)
        call.counter.count = len(self.tokenizer(pieces.text, add_special_tokens=False)["input_ids"])
        final = self._finish(call, pieces.text)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=final.usage_metadata,
                response_metadata=final.response_metadata,
                chunk_position="last",
            )
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        iterator = cast(
            Generator[ChatGenerationChunk, None, None],
            self._stream(messages, stop, None, **kwargs),
        )
        done = object()
        try:
            while True:
                chunk = await asyncio.to_thread(next, iterator, done)
                if chunk is done:
                    break
                assert isinstance(chunk, ChatGenerationChunk)
                if run_manager and chunk.text:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        finally:
            await asyncio.to_thread(iterator.close)

    # -- helpers ------------------------------------------------------------------------------

    def _emit(self, text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
        if run_manager:
            run_manager.on_llm_new_token(text, chunk=chunk)
        return chunk

    def _warm_up(self, schema: Mapping[str, Any]) -> None:
        grammars = self._grammars()
        grammars.compile(schema)
        grammars.string_budget(max_new_tokens=self.max_new_tokens)

    def _grammars(self) -> GrammarCache:
        config = self.hf_model.config
        vocab_size = getattr(config, "vocab_size", None) or config.get_text_config().vocab_size
        return GrammarCache.for_tokenizer(self.tokenizer, vocab_size=vocab_size)

    def _tool_schema(self, tools: Sequence[Mapping[str, Any]], tool_choice: Any) -> dict[str, Any]:
        return tool_call_schema(
            tools,
            tool_choice=tool_choice,
            thought=self.thought,
            thought_max_length=self.thought_max_length,
            no_call=self.no_call,
        )

    def _parallel_schemas(
        self, tools: Sequence[Mapping[str, Any]], tool_choice: Any
    ) -> ParallelSchemas:
        return parallel_call_schemas(
            tools,
            tool_choice=tool_choice,
            thought=self.thought,
            thought_max_length=self.thought_max_length,
            no_call=self.no_call,
        )

    def _prepare(
        self, messages: Sequence[BaseMessage], stop: list[str] | None, kwargs: Mapping[str, Any]
    ) -> _Call:
        tools: list[dict[str, Any]] = list(kwargs.get("tools") or [])
        response_format = kwargs.get("response_format")
        mode: Mode = "text"
        schema: dict[str, Any] | None = None
        instruction = ""
        if response_format is not None:
            mode, schema = "json", structured_output_schema(response_format)
            instruction = json_instruction(schema)
        native = self.uses_native_tools()
        template_tools: list[dict[str, Any]] | None = None
        may_answer = False
        max_calls = 1
        parallel: ParallelSchemas | None = None
        if response_format is None and tools:
            tool_choice = kwargs.get("tool_choice")
            names = [tool["function"]["name"] for tool in tools]
            tool_mode = normalize_tool_choice(tool_choice, names)[0]
            if tools and tool_mode != "none":
                may_answer = tool_mode == "auto"
                if kwargs.get("parallel_tool_calls"):
                    max_calls = max(1, self.max_parallel_calls)
                if native:
                    allowed = normalize_tool_choice(
                        tool_choice, [t["function"]["name"] for t in tools]
                    )[1]
                    mode, schema = "tools", native_call_schema(tools, allowed)
                    template_tools = [t for t in tools if t["function"]["name"] in allowed]
                    instruction = _native_instruction(allowed, may_answer=may_answer)
                else:
                    mode, schema = "tools", self._tool_schema(tools, tool_choice)
                    if max_calls > 1:
                        parallel = self._parallel_schemas(tools, tool_choice)
                    instruction = tools_instruction(
                        tools,
                        tool_choice,
                        thought=self.thought,
                        no_call=self.no_call,
                        parallel=max_calls > 1,
                    )
        max_new_tokens = int(kwargs.get("max_new_tokens") or self.max_new_tokens)
        turns = (
            native_turns(messages)
            if native
            else to_chat_turns(messages, thought=self.thought, no_call=self.no_call)
        )
        fitted = fit_turns(
            turns,
            render=lambda turns: self._render(list(turns), instruction, tools=template_tools),
            count=lambda text: len(self.tokenizer(text, add_special_tokens=False)["input_ids"]),
            budget=self.context_window() - max_new_tokens,
        )
        prompt = fitted.prompt
        pipeline_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "return_full_text": False,
        }
        if self.temperature > 0:
            pipeline_kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            pipeline_kwargs["do_sample"] = False
        counter = _TokenCounter()
        processors: list[Any] = [counter.processor]
        if schema is not None:
            grammars = self._grammars()
            if template_tools is not None:
                wrappers = ANSWER_OR_CALL if may_answer else CALL_ONLY
                processor = grammars.wrapped_logits_processor(
                    schema, wrappers=wrappers, or_text=may_answer, max_calls=max_calls
                )
                processors.append(processor)
            elif parallel is not None:
                processors.append(grammars.calls_logits_processor(parallel, max_calls=max_calls))
            else:
                processors.append(grammars.logits_processor(schema))
            thought = mode == "tools" and self.thought and template_tools is None
            thought_tokens = self.thought_max_tokens if thought else None
            budget = grammars.string_budget(
                max_new_tokens=max_new_tokens,
                thought_tokens=thought_tokens,
                stop_when_short=max_calls > 1,
            )
            processors.append(budget)
        elif stop:
            pipeline_kwargs["stop_sequence"] = list(stop)
        from transformers import LogitsProcessorList, StoppingCriteriaList

        pipeline_kwargs["logits_processor"] = LogitsProcessorList(processors)
        pipeline_kwargs["stopping_criteria"] = StoppingCriteriaList([counter.criterion])
        if self.draft_tokens and drafting_enabled(self.hf_model):
            pipeline_kwargs[DRAFT_KWARG] = self.draft_tokens
        return _Call(
            prompt=prompt,
            mode=mode,
            max_new_tokens=max_new_tokens,
            stop=list(stop or []) if schema is None else [],
            counter=counter,
            pipeline_kwargs=pipeline_kwargs,
            schema=schema,
            native=template_tools is not None,
            max_calls=max_calls,
        )

    def _attach_prefix(self, call: _Call) -> None:
        """Hand generate() the prefix KV cache (after the generation-cache lookup missed)."""
        if self.prefix_cache:
            # The text-generation pipeline hands unknown keywords to model.generate() unchanged
            # (HuggingFacePipeline's generate and stream both forward pipeline_kwargs), and
            # generate() encodes only the prompt tokens the cache does not hold yet.
            past = PrefixCache.for_model(self.hf_model).lookup(self.tokenizer, call.prompt)
            if past is not None:
                call.pipeline_kwargs[_cache_keyword(self.hf_model)] = past

    def _cache_request(self, call: _Call, messages: Sequence[BaseMessage]) -> CacheRequest | None:
        """Describe a greedy call for the generation cache (sampled calls are never cached)."""
        if self.generation_cache is None or self.temperature > 0:
            return None
        scope = {
            "model": [self.model_name, str(getattr(self.hf_model, "name_or_path", ""))],
            "dtype": str(getattr(self.hf_model, "dtype", "")),
            "decoding": [self.temperature, call.max_new_tokens, call.stop],
            "thought": [self.thought, self.thought_max_length, self.thought_max_tokens],
            "mode": call.mode,
            "native": call.native,
            "schema": call.schema,
        }
        if call.max_calls > 1:  # Only then: single-call keys stay what they were.
            scope["max_calls"] = call.max_calls
        system = "\n".join(str(m.text) for m in messages if isinstance(m, SystemMessage))
        task = semantic_task(messages, call.mode)
        return CacheRequest(scope=scope, system=system, prompt=call.prompt, task=task)

    def context_window(self) -> int:
        """Return the most tokens prompt plus output may take (``context_tokens`` or the config)."""
        if self.context_tokens is not None:
            return self.context_tokens
        config = getattr(self.hf_model, "config", None)
        return int(getattr(config, "max_position_embeddings", 0) or 2048)

    def _render(
        self,
        turns: list[dict[str, Any]],
        instruction: str,
        *,
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        if instruction:
            if turns and turns[0]["role"] == "system":
                turns[0] = {"role": "system", "content": f"{turns[0]['content']}\n\n{instruction}"}
            else:
                turns.insert(0, {"role": "system", "content": instruction})
        if getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template(
                turns, tools=tools, tokenize=False, add_generation_prompt=True
            )
            return str(rendered)
        body = "".join(f"<|im_start|>{t['role']}\n{t['content']}<|im_end|>\n" for t in turns)
        return body + "<|im_start|>assistant\n"

    def _finish(self, call: _Call, text: str) -> AIMessage:
        if call.stop:
            text = _cut_at_stop(text, call.stop)
        prompt_tokens = len(self.tokenizer(call.prompt, add_special_tokens=False)["input_ids"])
        output_tokens = call.counter.count
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "total_tokens": prompt_tokens + output_tokens,
        }
        finish = "length" if output_tokens >= call.max_new_tokens else "stop"
        meta: dict[str, Any] = {"model_name": self.model_name, "finish_reason": finish}
        if call.mode != "tools":
            return AIMessage(content=text, usage_metadata=usage, response_metadata=meta)
        if call.max_calls > 1:
            return self._finish_calls(call, text, usage, meta)
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        try:
            decision = parse_native_output(text) if call.native else parse_tool_output(text)
        except ValueError as exc:
            bad = invalid_tool_call(args=text, id=call_id, error=str(exc))
            return AIMessage(
                content="", invalid_tool_calls=[bad], usage_metadata=usage, response_metadata=meta
            )
        extra = {"thought": decision.thought} if self.thought else {}
        if decision.response is not None:
            return AIMessage(
                content=decision.response,
                additional_kwargs=extra,
                usage_metadata=usage,
                response_metadata=meta,
            )
        if decision.name is None or not decision.complete:
            error = (
                f"tool call cut off at max_new_tokens={call.max_new_tokens}; "
                "raise max_new_tokens or shorten the prompt"
            )
            bad = invalid_tool_call(name=decision.name, args=text, id=call_id, error=error)
            return AIMessage(
                content=decision.thought,
                invalid_tool_calls=[bad],
                additional_kwargs=extra,
                usage_metadata=usage,
                response_metadata=meta,
            )
        arguments = decision.arguments or {}
        return AIMessage(
            content=decision.thought,
            tool_calls=[tool_call(name=decision.name, args=arguments, id=call_id)],
            additional_kwargs=extra,
            usage_metadata=usage,
            response_metadata=meta,
        )

    def _finish_calls(self, call: _Call, text: str, usage: Any, meta: dict[str, Any]) -> AIMessage:
        """Build the reply of a turn that may hold several calls: every complete call becomes a
        tool call with its own id; a call cut off at ``max_new_tokens`` an invalid one."""
        try:
            decisions = parse_native_calls(text) if call.native else parse_tool_calls(text)
        except ValueError as exc:
            bad = invalid_tool_call(args=text, id=_call_id(), error=str(exc))
            return AIMessage(
                content="", invalid_tool_calls=[bad], usage_metadata=usage, response_metadata=meta
            )
        first = decisions[0]
        extra = {"thought": first.thought} if self.thought else {}
        if first.response is not None:
            return AIMessage(
                content=first.response,
                additional_kwargs=extra,
                usage_metadata=usage,
                response_metadata=meta,
            )
        good: list[ToolDecision] = []
        cut: list[ToolDecision] = []
        for decision in decisions:
            (good if decision.complete and decision.name is not None else cut).append(decision)
        error = (
            f"tool call cut off at max_new_tokens={call.max_new_tokens}; "
            "raise max_new_tokens or shorten the prompt"
        )
        return AIMessage(
            content=first.thought,
            tool_calls=[
                tool_call(name=str(d.name), args=d.arguments or {}, id=_call_id()) for d in good
            ],
            invalid_tool_calls=[
                invalid_tool_call(name=d.name, args=text, id=_call_id(), error=error) for d in cut
            ],
            additional_kwargs=extra,
            usage_metadata=usage,
            response_metadata=meta,
        )


def _cache_keyword(model: Any) -> str:
    """Return the ``generate()`` keyword for a KV cache: ``cache`` where this transformers reads
    it (5.2x, which warns that ``past_key_values`` is deprecated), else ``past_key_values``."""
    parameters = inspect.signature(model.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _call_id() -> str:
    """Return a fresh tool-call id."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _native_instruction(allowed: Sequence[str], *, may_answer: bool) -> str:
    """Return the line that says which call a native-format turn must make, if any."""
    if may_answer:
        return ""
    if len(allowed) == 1:
        return f"Call the {allowed[0]} tool now."
    return "Call one of the tools now."


@dataclass
class _Call:
    """Everything one generation needs, prepared from the messages and bound kwargs."""

    prompt: str
    mode: Mode
    max_new_tokens: int
    stop: list[str]
    counter: _TokenCounter
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] | None = None
    native: bool = False
    max_calls: int = 1


class _TokenCounter:
    """Counts the tokens one ``generate()`` call kept (the end-of-turn token included).

    ``processor`` (first among the logits processors) notes the prompt's length; ``criterion``
    (a stopping criterion that never stops) notes the sequence's length after every step.
    Counting logits-processor calls would overcount under assisted decoding, which also scores
    draft tokens it then rejects.
    """

    def __init__(self) -> None:
        self.count = 0
        self.prompt_length: int | None = None
        self.processor = _NotePromptLength(self)
        self.criterion = _NoteLength(self)


class _NotePromptLength:
    """A pass-through logits processor that tells a ``_TokenCounter`` the prompt's length."""

    def __init__(self, counter: _TokenCounter) -> None:
        self._counter = counter

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._counter.prompt_length is None:
            self._counter.prompt_length = int(input_ids.shape[1])
        return scores


class _NoteLength:
    """A stopping criterion that never stops; it tells a ``_TokenCounter`` the tokens kept."""

    def __init__(self, counter: _TokenCounter) -> None:
        self._counter = counter

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        start = self._counter.prompt_length
        if start is not None:
            self._counter.count = int(input_ids.shape[1]) - start
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def to_chat_turns(
    messages: Sequence[BaseMessage], *, thought: bool = True, no_call: NoCallStyle = "response"
) -> list[dict[str, str]]:
    """Convert LangChain messages to ``{"role", "content"}`` turns any ChatML template accepts.

    Small chat templates know only system, user and assistant, so a ``ToolMessage`` becomes a
    user turn ``Observation from <tool>: <content>``, and an ``AIMessage`` with tool calls
    becomes the JSON the model itself produces under the tool-call grammar.

    Args:
        messages: The conversation.
        thought: Whether rendered tool calls carry a ``thought`` field.
        no_call: The no-call style; ``decision`` renders calls with ``"use_tool": true``.
    """
    tool_names: dict[str, str] = {}
    turns: list[dict[str, str]] = []
    for message in messages:
        text = str(message.text)
        plain = plain_turn(message)
        if plain is not None:
            turns.append(plain)
        elif isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.get("id"):
                    tool_names[str(call["id"])] = call["name"]
            text = _assistant_text(message, thought, decision=no_call == "decision")
            turns.append({"role": "assistant", "content": text})
        elif isinstance(message, ToolMessage):
            name = message.name or tool_names.get(message.tool_call_id, "tool")
            turns.append({"role": "user", "content": f"Observation from {name}: {text}"})
        elif isinstance(message, FunctionMessage):
            turns.append({"role": "user", "content": f"Observation from {message.name}: {text}"})
        else:
            raise ValueError(f"cannot render message of type {type(message).__name__}")
    return turns


def _assistant_text(message: AIMessage, thought: bool, *, decision: bool = False) -> str:
    if not message.tool_calls:
        return str(message.text)
    lines = []
    for index, call in enumerate(message.tool_calls):
        # As the parallel grammar writes them: only the first call carries the thought and
        # the decision; the later ones are bare calls (see ``parallel_call_schemas``).
        payload: dict[str, Any] = {}
        if thought and index == 0:
            payload["thought"] = str(message.text)
        if decision and index == 0:
            payload["use_tool"] = True
        payload["name"] = call["name"]
        payload["arguments"] = call["args"]
        # json.dumps' default separators are exactly what the grammar emits.
        lines.append(json.dumps(payload, ensure_ascii=False))
    return "\n".join(lines)


def tools_instruction(
    tools: Sequence[Mapping[str, Any]],
    tool_choice: Any = None,
    *,
    thought: bool = True,
    no_call: NoCallStyle = "response",
    parallel: bool = False,
) -> str:
    """Write the compact system-prompt block that lists tools and the reply format.

    Only the tools ``tool_choice`` allows are listed: the grammar forbids the others anyway,
    and every listed tool costs prefill time. ``no_call`` words the answer branch the way
    ``tool_call_schema`` shapes it; ``parallel`` adds how to make several calls at once.
    """
    functions = [tool["function"] for tool in tools]
    mode, allowed = normalize_tool_choice(tool_choice, [fn["name"] for fn in functions])
    lead = '"thought": "<one short sentence>", ' if thought else ""
    may_answer = mode == "auto"
    call_lead = lead + ('"use_tool": true, ' if may_answer and no_call == "decision" else "")
    lines = []
    if allowed:
        lines.append("Tools:")
        lines.extend(_tool_line(fn) for fn in functions if fn["name"] in allowed)
        if may_answer and no_call == "option":
            lines.append(f"- {NO_TOOL}: none of the tools fits the request")
        lines.append(f'To use a tool, reply {{{call_lead}"name": "<tool>", "arguments": {{...}}}}')
        if parallel:
            lines.append(
                'For several independent calls, add one line {"name": "<tool>", "arguments": '
                "{...}} per further call."
            )
    if may_answer and no_call == "decision":
        lines.append(f'If no tool fits, reply {{{lead}"use_tool": false, "response": "<answer>"}}')
    elif may_answer and no_call == "option":
        option = f'"name": "{NO_TOOL}", "response": "<answer>"'
        lines.append(f"If no tool fits, reply {{{lead}{option}}}")
    elif may_answer:
        lines.append(f'To answer directly, reply {{{lead}"response": "<answer>"}}')
    elif mode == "none":
        lines.append(f'Reply {{{lead}"response": "<answer>"}}')
    elif len(allowed) == 1:
        lines.append(f"You must use the {allowed[0]} tool.")
    else:
        lines.append("You must use one of the tools.")
    return "\n".join(lines)


def json_instruction(schema: Mapping[str, Any]) -> str:
    """Write the system-prompt block that asks for one JSON object of ``schema``'s shape."""
    lines = []
    if schema.get("description"):
        lines.append(str(schema["description"]).strip())
    lines.append(f"Reply with one JSON object: {schema_outline(schema)}")
    lines.extend(
        f"- {key}: {sub['description']}"
        for key, sub in schema.get("properties", {}).items()
        if isinstance(sub, Mapping) and sub.get("description")
    )
    return "\n".join(lines)


def _tool_line(fn: Mapping[str, Any]) -> str:
    params = fn.get("parameters") or {}
    required = set(params.get("required", []))
    defs = params.get("$defs", {})
    args = []
    notes = []
    for key, sub in params.get("properties", {}).items():
        optional = "" if key in required else "?"
        args.append(f"{key}{optional}: {schema_outline(sub, defs=defs)}")
        if isinstance(sub, Mapping) and sub.get("description"):
            notes.append(f"{key} = {sub['description']}")
    line = f"- {fn['name']}({', '.join(args)})"
    if fn.get("description"):
        line += f": {str(fn['description']).strip()}"
    if notes:
        line += f" ({'; '.join(notes)})"
    return line


def _as_last_chunk(message: AIMessage) -> AIMessageChunk:
    return AIMessageChunk(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        tool_call_chunks=[
            tool_call_chunk(
                name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=index
            )
            for index, call in enumerate(message.tool_calls)
        ]
        + [
            tool_call_chunk(
                name=bad.get("name"),
                args=bad.get("args"),
                id=bad.get("id"),
                index=len(message.tool_calls) + index,
            )
            for index, bad in enumerate(message.invalid_tool_calls)
        ],
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        chunk_position="last",
    )


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cuts = [text.find(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class _StopFilter:
    """Pass streamed text through, holding back any tail that could start a stop string."""

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = [s for s in stop if s]
        self._hold = max((len(s) for s in self._stop), default=1) - 1
        self.text = ""
        self._sent = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.text += piece
        if self._stop:
            cut = _cut_at_stop(self.text, self._stop)
            if len(cut) < len(self.text):
                self.text, self.stopped = cut, True
                return self._release(len(cut))
        return self._release(max(self._sent, len(self.text) - self._hold))

    def flush(self) -> str:
        return self._release(len(self.text))

    def _release(self, upto: int) -> str:
        out = self.text[self._sent : upto]
        self._sent = max(self._sent, upto)
        return out
