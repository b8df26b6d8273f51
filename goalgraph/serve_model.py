"""``goalgraph serve-model``: an OpenAI-compatible HTTP server over goalgraph's local runtime.

It serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (plain, streamed as server-sent
events, with ``tools``/``tool_choice`` and with ``response_format`` JSON schemas) from one
``LocalChatModel``. Tool calls and JSON replies are grammar-constrained exactly as in-process, so
any OpenAI client (``ChatOpenAI``, the ``openai`` SDK, curl), including a goalgraph agent with
``model: {provider: openai, base_url: http://127.0.0.1:8000/v1}``, gets valid calls.

Generation is blocking and the model is one: requests run in a worker thread, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable

from goalgraph.spec import BUNDLED_MODEL, DEFAULT_MODEL, ModelSpec

__all__ = ["BadRequest", "create_app", "main", "to_langchain_messages"]

log = logging.getLogger(__name__)


class BadRequest(ValueError):
    """A request the server cannot serve; answered with an OpenAI-style error JSON."""

    def __init__(
        self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        """Describe the problem; ``param`` names the offending request field."""
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code


def _error(message: str, *, status: int, kind: str, param: str | None = None, code: Any = None):
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


# -- request conversion ----------------------------------------------------------------------------


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
            else:
                raise BadRequest("only text content parts are supported", param=where)
        return "".join(parts)
    raise BadRequest("content must be a string or a list of text parts", param=where)


def to_langchain_messages(messages: Any) -> list[BaseMessage]:
    """Convert OpenAI chat messages to LangChain messages.

    Raises:
        BadRequest: A message is malformed or has an unknown role.
    """
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    out: list[BaseMessage] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise BadRequest("each message must be an object", param=where)
        role = message.get("role")
        content = _text(message.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            out.append(SystemMessage(content))
        elif role == "user":
            out.append(HumanMessage(content))
        elif role == "assistant":
            calls = []
            for n, call in enumerate(message.get("tool_calls") or []):
                fn = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                    raise BadRequest("a tool call needs function.name", param=f"{where}.tool_calls")
                arguments = fn.get("arguments") or "{}"
                try:
                    args = json.loads(arguments) if isinstance(arguments, str) else arguments
                except json.JSONDecodeError:
                    raise BadRequest(
                        "tool call arguments must be a JSON string",
                        param=f"{where}.tool_calls[{n}].function.arguments",
                    ) from None
                if not isinstance(args, dict):
                    raise BadRequest(
                        "tool call arguments must be a JSON object",
                        param=f"{where}.tool_calls[{n}].function.arguments",
                    )
                call_id = call.get("id") or f"call_{index}_{n}"
                calls.append({"name": fn["name"], "args": args, "id": call_id, "type": "tool_call"})
            out.append(AIMessage(content=content, tool_calls=calls))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise BadRequest("a tool message needs tool_call_id", param=f"{where}.tool_call_id")
            out.append(ToolMessage(content=content, tool_call_id=call_id, name=message.get("name")))
        else:
            raise BadRequest(f"unknown role {role!r}", param=f"{where}.role")
    return out


def _tool_choice(value: Any) -> Any:
    if value is None or value in ("auto", "none", "required"):
        return value
    if isinstance(value, Mapping) and value.get("type") == "function":
        name = (value.get("function") or {}).get("name")
        if isinstance(name, str):
            return name
    raise BadRequest(
        'tool_choice must be "auto", "none", "required" or '
        '{"type": "function", "function": {"name": ...}}',
        param="tool_choice",
    )


def _response_schema(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequest("response_format must be an object", param="response_format")
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = value.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise BadRequest(
                "response_format.json_schema.schema must be a JSON schema object",
                param="response_format",
            )
        # OpenAI clients move the schema's title and description up into json_schema's name
        # and description; put them back, since the model's instruction is written from them.
        outer = {"title": spec.get("name"), "description": spec.get("description")}
        return {**{k: v for k, v in outer.items() if isinstance(v, str) and v}, **schema}
    raise BadRequest(f"unsupported response_format type {kind!r}", param="response_format")


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest("tools must be a list", param="tools")
    for index, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type", "function") != "function"
            or not isinstance(fn, Mapping)
            or not isinstance(fn.get("name"), str)
        ):
            raise BadRequest(
                'each tool must be {"type": "function", "function": {"name": ...}}',
                param=f"tools[{index}]",
            )
    return [dict(tool, type="function") for tool in value]


def _prepare(
    model: BaseChatModel, body: Mapping[str, Any]
) -> tuple[Runnable[Any, Any], list[BaseMessage]]:
    """Turn a request body into the runnable to call and its input messages."""
    messages = to_langchain_messages(body.get("messages"))
    if body.get("n", 1) not in (1, None):
        raise BadRequest("only n=1 is supported", param="n")
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise BadRequest("temperature must be a number from 0 to 2", param="temperature")
        if getattr(model, "temperature", temperature) != temperature:
            model = model.model_copy(update={"temperature": float(temperature)})
    kwargs: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or max_tokens <= 0:
            raise BadRequest("max_tokens must be a positive integer", param="max_tokens")
        kwargs["max_new_tokens"] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise BadRequest("stop must be a string or a list of strings", param="stop")
    if stop:
        kwargs["stop"] = stop
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise BadRequest("parallel_tool_calls must be true or false", param="parallel_tool_calls")
    schema = _response_schema(body.get("response_format"))
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"))
    try:
        if schema is not None:
            # The model's JSON mode: the reply is decoded under the schema's grammar and its
            # text (the JSON document) becomes the message content.
            return model.bind(response_format=schema, **kwargs), messages
        if tools:
            # One call a turn unless the request asks for more: small models get one right
            # more often, so goalgraph's server does not follow OpenAI's default here.
            several = {"parallel_tool_calls": True} if parallel else {}
            return model.bind_tools(tools, tool_choice=tool_choice, **kwargs, **several), messages
    except (ValueError, TypeError) as exc:
        raise BadRequest(str(exc), param="tools" if tools else "response_format") from None
    if tool_choice not in (None, "auto", "none"):
        raise BadRequest(f"tool_choice {tool_choice!r} needs tools", param="tool_choice")
    return model.bind(**kwargs), messages


# -- response shaping ------------------------------------------------------------------------------


def _openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ]


def _usage(message: AIMessage) -> dict[str, int]:
    usage = message.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
    }


def _finish_reason(message: AIMessage) -> str:
    if message.tool_calls:
        return "tool_calls"
    return str(message.response_metadata.get("finish_reason") or "stop")


def completion_body(message: AIMessage, *, model_name: str) -> dict[str, Any]:
    """Shape an ``AIMessage`` as an OpenAI ``chat.completion`` object."""
    text = str(message.text)
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if message.tool_calls:
        reply["tool_calls"] = _openai_tool_calls(message)
    elif not text:
        reply["content"] = ""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": _finish_reason(message),
                "logprobs": None,
            }
        ],
        "usage": _usage(message),
    }


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _stream_events(
    runnable: Runnable[Any, Any],
    messages: list[BaseMessage],
    *,
    lock: asyncio.Lock,
    model_name: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_name,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**base, "choices": [choice]})

    async with lock:
        yield chunk({"role": "assistant", "content": ""})
        whole: AIMessageChunk | None = None
        try:
            async for piece in runnable.astream(messages):
                if not isinstance(piece, AIMessageChunk):
                    continue
                whole = piece if whole is None else whole + piece
                text = piece.text
                if text:
                    yield chunk({"content": text})
                if piece.tool_call_chunks:
                    yield chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": part.get("index") or 0,
                                    "id": part.get("id"),
                                    "type": "function",
                                    "function": {
                                        "name": part.get("name"),
                                        "arguments": part.get("args") or "",
                                    },
                                }
                                for part in piece.tool_call_chunks
                            ]
                        }
                    )
        except Exception as exc:  # Headers are sent: report in-band, as OpenAI does.
            log.exception("generation failed")
            yield _sse({"error": {"message": str(exc), "type": "server_error"}})
            yield b"data: [DONE]\n\n"
            return
    final = AIMessage(
        content=whole.content if whole else "",
        tool_calls=whole.tool_calls if whole else [],
        usage_metadata=whole.usage_metadata if whole else None,
        response_metadata=whole.response_metadata if whole else {},
    )
    yield chunk({}, _finish_reason(final))
    if include_usage:
        yield _sse({**base, "choices": [], "usage": _usage(final)})
    yield b"data: [DONE]\n\n"


# -- the app ---------------------------------------------------------------------------------------


def create_app(model: BaseChatModel, *, model_name: str = BUNDLED_MODEL) -> FastAPI:
    """Build the FastAPI app serving ``model`` under the name ``model_name``."""
    app = FastAPI(title="goalgraph serve-model", version="1")
    lock = asyncio.Lock()  # One model, one generation at a time.
    created = int(time.time())

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        card = {"id": model_name, "object": "model", "created": created, "owned_by": "goalgraph"}
        return {"object": "list", "data": [card]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error("the body must be JSON", status=400, kind="invalid_request_error")
        try:
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            requested = body.get("model")
            if requested not in (None, model_name):
                raise BadRequest(
                    f"the model {requested!r} does not exist; this server serves {model_name!r}",
                    param="model",
                    status=404,
                    code="model_not_found",
                )
            runnable, messages = _prepare(model, body)
        except BadRequest as exc:
            return _error(
                str(exc),
                status=exc.status,
                kind="invalid_request_error",
                param=exc.param,
                code=exc.code,
            )
        if body.get("stream"):
            options = body.get("stream_options") or {}
            events = _stream_events(
                runnable,
                messages,
                lock=lock,
                model_name=model_name,
                include_usage=bool(options.get("include_usage")),
            )
            return StreamingResponse(events, media_type="text/event-stream")
        try:
            async with lock:
                # LocalChatModel's ainvoke runs the blocking generation in a worker thread.
                message = await runnable.ainvoke(messages)
        except ValueError as exc:
            return _error(str(exc), status=400, kind="invalid_request_error")
        except Exception as exc:
            log.exception("generation failed")
            return _error(f"generation failed: {exc}", status=500, kind="server_error")
        return JSONResponse(completion_body(message, model_name=model_name))

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Load a model and serve it over HTTP until interrupted."""
    parser = argparse.ArgumentParser(
        prog="goalgraph serve-model",
        description="Serve a local model through an OpenAI-compatible HTTP API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to bind (127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (8000).")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a ladder model (default qwen2.5-coder-0.5b; smollm2 is bundled), a model folder, "
        "a GGUF file or a hub id.",
    )
    parser.add_argument(
        "--served-model-name", default=None, help="Name clients use (default: --model)."
    )
    parser.add_argument("--max-new-tokens", type=int, default=256, help="Default token limit.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch.")
    parser.add_argument("--log-level", default="info", help="uvicorn log level.")
    args = parser.parse_args(list(argv) if argv is not None else None)

    import uvicorn

    from goalgraph.llm import LocalChatModel

    spec = ModelSpec(
        name=args.model,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        threads=args.threads,
    )
    model = LocalChatModel.from_spec(spec)
    app = create_app(model, model_name=args.served_model_name or args.model)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
