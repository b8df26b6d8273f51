"""A small in-memory stand-in for a Zep v2 server, for tests (we cannot run Zep offline).

Run as ``python tests/servers/zep_server.py --port N [--api-key KEY] [--facts-only-search]``; it
serves ``http://127.0.0.1:N/api/v2``. It implements only the routes ``zep-python`` 2.0.2 calls for
``goalgraph.memory.zep.ZepMemory``, with the JSON shapes the SDK's pydantic types parse:

- users: ``POST /users``, ``GET`` and ``PATCH /users/{user_id}`` (metadata is merged key by key);
- sessions: ``POST /sessions``, ``GET`` and ``PATCH /sessions/{session_id}``,
  ``GET /sessions-ordered`` (paged, oldest first);
- memory: ``POST``, ``GET`` and ``DELETE /sessions/{session_id}/memory``,
  ``GET /sessions/{session_id}/messages``;
- search: ``POST /sessions/search`` (scope ``messages`` or ``facts``);
- facts: ``DELETE /facts/{fact_uuid}``.

A real Zep server extracts facts with an LLM into a knowledge graph. This double derives one fact
per message whose ``role_type`` is ``user``: the message's text itself. That is enough for facts
to flow end to end (learned, searched, listed, deleted, gone with their session). Search scores by
word overlap: the share of the query's words that the text contains. With ``--facts-only-search``
search ignores ``search_scope`` and returns facts only, as Zep Community Edition 1.x does.

With ``--api-key`` every request must carry ``Authorization: Api-Key <key>`` (else HTTP 401).
Unknown users, sessions and facts answer 404 with Zep's error shape, ``{"message": ...}``.
"""

from __future__ import annotations

import argparse
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["ZepState", "create_app", "main"]

_WORD = re.compile(r"[a-z0-9]+")

Payload = Annotated[dict[str, Any], Body()]
"""A JSON object request body."""


class NotFound(Exception):
    """A user, session or fact the request names does not exist."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def overlap(query: str, text: str) -> float:
    """Score ``text`` against ``query``: the share of the query's words it contains."""
    wanted = _words(query)
    return len(wanted & _words(text)) / len(wanted) if wanted else 0.0


class ZepState:
    """Users, sessions, messages and facts, all in memory."""

    def __init__(self) -> None:
        """Start empty."""
        self.users: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, dict[str, Any]] = {}

    def user(self, user_id: str) -> dict[str, Any]:
        """Return the user ``user_id``; raise ``NotFound`` when there is none."""
        if user_id not in self.users:
            raise NotFound(f"user {user_id} not found")
        return self.users[user_id]

    def session(self, session_id: str) -> dict[str, Any]:
        """Return the session ``session_id``; raise ``NotFound`` when there is none."""
        if session_id not in self.sessions:
            raise NotFound(f"session {session_id} not found")
        return self.sessions[session_id]

    def add_messages(self, session_id: str, messages: list[dict[str, Any]]) -> None:
        """Store ``messages`` in the session and derive one fact from each user message."""
        session = self.session(session_id)
        for message in messages:
            stored = {
                **message,
                "uuid": str(uuid.uuid4()),
                "created_at": _now(),
                "updated_at": _now(),
                "token_count": len(message.get("content", "").split()),
            }
            self.messages[session_id].append(stored)
            if message.get("role_type") == "user" and message.get("content"):
                self._add_fact(message["content"], session)

    def _add_fact(self, text: str, session: dict[str, Any]) -> None:
        fact_uuid = str(uuid.uuid4())
        self.facts[fact_uuid] = {
            "uuid": fact_uuid,
            "fact": text,
            "created_at": _now(),
            "session_id": session["session_id"],
            "user_id": session["user_id"],
        }

    def delete_session(self, session_id: str) -> None:
        """Delete the session, its messages and the facts derived from them."""
        self.session(session_id)
        del self.sessions[session_id]
        del self.messages[session_id]
        for fact_uuid in [u for u, f in self.facts.items() if f["session_id"] == session_id]:
            del self.facts[fact_uuid]

    def search(
        self, query: dict[str, Any], limit: int | None, *, facts_only: bool
    ) -> list[dict[str, Any]]:
        """Return search results, best first, within the user's or the named sessions."""
        session_ids = set(query.get("session_ids") or [])
        user_id = query.get("user_id")
        scope = "facts" if facts_only else query.get("search_scope") or "messages"
        text = query.get("text") or ""

        def wanted(session_id: str) -> bool:
            owner = self.sessions.get(session_id, {}).get("user_id")
            return session_id in session_ids or (bool(user_id) and owner == user_id)

        results: list[dict[str, Any]] = []
        if scope == "facts":
            for fact in self.facts.values():
                if wanted(fact["session_id"]):
                    public = {k: fact[k] for k in ("uuid", "fact", "created_at")}
                    results.append({"fact": public, "score": overlap(text, fact["fact"])})
        elif scope == "messages":
            for session_id, messages in self.messages.items():
                if wanted(session_id):
                    results.extend(
                        {
                            "message": message,
                            "session_id": session_id,
                            "score": overlap(text, message.get("content", "")),
                        }
                        for message in messages
                    )
        results = sorted((r for r in results if r["score"] > 0), key=lambda r: -r["score"])
        return results[:limit] if limit else results

    def session_facts(self, session_id: str) -> list[dict[str, Any]]:
        """Return the facts derived from the session's messages, in Zep's public shape."""
        return [
            {k: fact[k] for k in ("uuid", "fact", "created_at")}
            for fact in self.facts.values()
            if fact["session_id"] == session_id
        ]


def _int(value: str | None, default: int | None = None) -> int | None:
    """Read an integer query parameter; zep-python sends unset ones as empty strings."""
    return int(value) if value else default


def _merge(metadata: dict[str, Any] | None, update: dict[str, Any] | None) -> dict[str, Any]:
    return {**(metadata or {}), **(update or {})}


def create_app(*, api_key: str | None = None, facts_only_search: bool = False) -> FastAPI:
    """Build the app; ``api_key`` turns on authentication, ``facts_only_search`` CE's search."""
    app = FastAPI(title="zep test double")
    state = ZepState()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        if api_key is not None and request.headers.get("authorization") != f"Api-Key {api_key}":
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        response: Response = await call_next(request)
        return response

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"message": f"not found: {exc}"}, status_code=404)

    @app.post("/api/v2/users")
    def add_user(body: Payload) -> Any:
        user_id = body.get("user_id") or ""
        if not user_id or user_id in state.users:
            return JSONResponse({"message": f"bad request: user {user_id!r}"}, status_code=400)
        state.users[user_id] = {
            "uuid": str(uuid.uuid4()),
            "user_id": user_id,
            "metadata": body.get("metadata") or {},
            "created_at": _now(),
            "updated_at": _now(),
        }
        return state.users[user_id]

    @app.get("/api/v2/users/{user_id}")
    def get_user(user_id: str) -> dict[str, Any]:
        return state.user(user_id)

    @app.patch("/api/v2/users/{user_id}")
    def update_user(user_id: str, body: Payload) -> dict[str, Any]:
        user = state.user(user_id)
        user["metadata"] = _merge(user["metadata"], body.get("metadata"))
        user["updated_at"] = _now()
        return user

    @app.post("/api/v2/sessions")
    def add_session(body: Payload) -> Any:
        session_id, user_id = body.get("session_id") or "", body.get("user_id")
        if user_id is not None:
            state.user(user_id)
        if not session_id or session_id in state.sessions:
            return JSONResponse({"message": f"bad request: session {session_id!r}"}, 400)
        state.sessions[session_id] = {
            "uuid": str(uuid.uuid4()),
            "session_id": session_id,
            "user_id": user_id,
            "metadata": body.get("metadata") or {},
            "created_at": _now(),
            "updated_at": _now(),
        }
        state.messages[session_id] = []
        return state.sessions[session_id]

    @app.get("/api/v2/sessions-ordered")
    def list_sessions(page_number: str | None = None, page_size: str | None = None) -> Any:
        ordered = sorted(state.sessions.values(), key=lambda s: s["created_at"])
        size = _int(page_size) or 100
        start = (max(_int(page_number) or 1, 1) - 1) * size
        page = ordered[start : start + size]
        return {"sessions": page, "total_count": len(ordered), "response_count": len(page)}

    @app.post("/api/v2/sessions/search")
    def search(body: Payload, limit: str | None = None) -> dict[str, Any]:
        return {"results": state.search(body, _int(limit), facts_only=facts_only_search)}

    @app.get("/api/v2/sessions/{session_id}")
    def get_session(session_id: str) -> dict[str, Any]:
        return state.session(session_id)

    @app.patch("/api/v2/sessions/{session_id}")
    def update_session(session_id: str, body: Payload) -> dict[str, Any]:
        session = state.session(session_id)
        session["metadata"] = _merge(session["metadata"], body.get("metadata"))
        session["updated_at"] = _now()
        return session

    @app.post("/api/v2/sessions/{session_id}/memory")
    def add_memory(session_id: str, body: Payload) -> dict[str, Any]:
        state.add_messages(session_id, body.get("messages") or [])
        return {"message": "OK"}

    @app.get("/api/v2/sessions/{session_id}/memory")
    def get_memory(session_id: str, lastn: str | None = None) -> dict[str, Any]:
        state.session(session_id)
        messages = state.messages[session_id]
        last = _int(lastn)
        return {
            "messages": messages[-last:] if last else messages,
            "relevant_facts": state.session_facts(session_id),
            "metadata": {},
        }

    @app.delete("/api/v2/sessions/{session_id}/memory")
    def delete_memory(session_id: str) -> dict[str, Any]:
        state.delete_session(session_id)
        return {"message": "OK"}

    @app.get("/api/v2/sessions/{session_id}/messages")
    def get_messages(session_id: str, limit: str | None = None) -> dict[str, Any]:
        state.session(session_id)
        messages = state.messages[session_id]
        size = _int(limit)
        page = messages[:size] if size else messages
        return {"messages": page, "total_count": len(messages), "row_count": len(page)}

    @app.delete("/api/v2/facts/{fact_uuid}")
    def delete_fact(fact_uuid: str) -> str:
        if state.facts.pop(fact_uuid, None) is None:
            raise NotFound(f"fact {fact_uuid} not found")
        return "deleted"

    return app


def main() -> None:
    """Parse the command line and serve on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=None, help="require Authorization: Api-Key <key>")
    parser.add_argument("--facts-only-search", action="store_true", help="search like Zep CE 1.x")
    args = parser.parse_args()
    app = create_app(api_key=args.api_key, facts_only_search=args.facts_only_search)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
