"""``ZepMemory``: long-term memory on a Zep server (v2 API) through ``zep-python``.

How goalgraph's memory maps onto Zep:

- **User.** Everything belongs to the Zep user ``user_id``, created on first use.
- **Episodes.** A goalgraph session is a Zep session of that user, created on the first
  ``add_episode``. Each turn becomes a Zep ``Message``: ``role`` is the speaker, ``role_type`` is
  ``assistant``, ``tool`` or ``system`` for those speakers and ``user`` for everyone else (people
  and documents, whose facts Zep should learn). The message's metadata keeps the turn's own
  metadata plus ``{"goalgraph": {"turn_id", "seq", "at", "source", "expires_at"}}``, so turn
  ids, positions and times survive the round trip (Zep assigns its own message uuids and
  creation times).
- **Facts.** Zep learns facts itself. A Zep fact becomes a ``Fact`` whose ``text`` is Zep's
  sentence; subject, predicate and object are ``""`` because Zep v2 does not report them, and
  ``sources`` is empty because Zep does not say which messages a fact came from. Validity
  (``valid_at``, ``invalid_at`` or ``expired_at``) is read when the server sends it; zep-python
  2.0.2's ``Fact`` type does not declare these fields but keeps them.
- **Search.** ``memory.search_sessions`` over the user's sessions (or the one given), once with
  scope ``facts`` and once with scope ``messages``; facts, then turns, are packed greedily while
  the rendered context fits ``budget_tokens``. Zep Community Edition 1.x searches facts only, so
  against it the context holds facts and no turns.
- **Listing facts.** ``facts()`` reads ``memory.get`` of each of the user's sessions (listed with
  ``memory.list_sessions``: ``user.get_sessions`` cannot parse a real server's answer in
  zep-python 2.0.2) and matches ``subject`` as a whole word of the fact. Zep CE returns only the
  few facts most relevant to each session's latest messages there.
- **Profile.** The Zep user's metadata holds ``{"profile": {profile_user_id: {key: {"value",
  "expires_at"}}}}``. An emptied or expired entry is written as ``null`` rather than dropped, so it
  goes whether the server replaces or merges metadata on update.
- **Forgetting.** ``forget(session_id=)`` deletes the session's memory (its messages, and the
  facts Zep learned into the session's graph); ``forget(fact_id=)`` deletes one fact;
  ``forget(entity=)`` deletes every listed fact that mentions the entity.
- **TTL.** Zep has no expiry, so it is kept client-side: each turn's metadata carries
  ``expires_at`` (storage time plus ``ttl_s``), and each session's metadata carries
  ``goalgraph_expires_at``, the time its last turn expires (``null`` while any turn is kept for
  good). Reads hide expired turns at once; ``sweep`` deletes the sessions whose every turn has
  expired (Zep v2 has no route to delete a single message) and expired profile entries.
- **Runs.** ``record_run`` adds one message per run to the session ``"<user_id>-runs"`` (not
  attached to the user, so goals do not turn into facts about the user): its content is the
  goal, its metadata the whole run as JSON. ``similar_runs`` searches that session's messages;
  when the server does not search messages (Zep CE), it ranks the session's latest runs by word
  overlap instead.

``from_spec`` reads (or creates) the user at once, so a wrong URL or key fails when memory is
opened rather than in the middle of a run. The client is zep-python's ``BaseClient``, the class
``Zep`` extends: ``Zep`` appends ``/api/v2`` to its ``base_url`` and lets the ``ZEP_API_URL``
environment variable override it, whereas ``memory.zep.base_url`` already names the API root.
Every failure (refused connection, timeout, HTTP error, unreadable answer) becomes a
``MemoryBackendError`` naming the server and the fix.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx
from zep_python.base_client import BaseClient
from zep_python.core.api_error import ApiError
from zep_python.types import Fact as ZepFact
from zep_python.types import Message, Session, SessionSearchResult, User

from goalgraph.memory.retrieve import pack_context
from goalgraph.memory.types import (
    CountTokens,
    Fact,
    MemoryBackendError,
    MemoryContext,
    RunRecord,
    StoredTurn,
    Turn,
    approx_tokens,
    utc,
    utcnow,
)
from goalgraph.spec import MemorySpec

__all__ = ["ZepMemory"]

P = ParamSpec("P")
T = TypeVar("T")
Item = TypeVar("Item", Fact, StoredTurn)

_TURN_META = "goalgraph"
"""Message metadata key under which goalgraph keeps a turn's id, position, time, source, expiry."""
_SESSION_EXPIRY = "goalgraph_expires_at"
"""Session metadata key: when the session's last turn expires, or null."""
_PROFILE = "profile"
"""User metadata key holding the profiles."""
_RUN = "goalgraph_run"
"""Message metadata key holding a run as JSON."""
_PLACEHOLDER_KEY = "goalgraph"
"""Sent when no API key is configured: zep-python needs one, Zep CE without a secret takes any."""
_PAGE = 100
"""Sessions asked for per page when listing them."""
_RUN_SCAN = 500
"""Latest runs ranked client-side when the server cannot search messages."""
_ALL = 1_000_000
"""A fact limit that means "all of them"."""
_ROLE_TYPES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "tool": "tool",
    "system": "system",
}
_WORD = re.compile(r"\w+")


class ZepMemory:
    """Long-term memory on a Zep server; see the module docstring for the mapping."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        user_id: str = "goalgraph",
        timeout_s: float = 30.0,
        count_tokens: CountTokens = approx_tokens,
        turn_ttl_s: float | None = None,
        profile_ttl_s: float | None = None,
    ) -> None:
        """Prepare a client; nothing is sent until the first call.

        Args:
            base_url: The server's API root, such as ``http://localhost:8000/api/v2``.
            api_key: Sent as ``Authorization: Api-Key ...`` (a placeholder when ``None``).
            user_id: The Zep user that owns goalgraph's sessions and profiles.
            timeout_s: Seconds to wait for one request.
            count_tokens: Counts the tokens of the rendered search context.
            turn_ttl_s: Default TTL of conversation turns (``source="message"``).
            profile_ttl_s: Default TTL of profile entries.
        """
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.timeout_s = timeout_s
        self._count = count_tokens
        self._turn_ttl_s = turn_ttl_s
        self._profile_ttl_s = profile_ttl_s
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._client = BaseClient(
            base_url=self.base_url,
            api_key=api_key or _PLACEHOLDER_KEY,
            timeout=timeout_s,
            httpx_client=self._http,
        )
        self._user_ready = False
        self._closed = False

    @classmethod
    def from_spec(cls, spec: MemorySpec) -> ZepMemory:
        """Open the server ``spec.zep`` names and make sure its user exists.

        Raises:
            MemoryBackendError: The server cannot be reached or refuses the key.
        """
        zep = spec.zep
        memory = cls(
            base_url=zep.base_url,
            api_key=zep.api_key,
            user_id=zep.user_id,
            timeout_s=zep.timeout_s,
            turn_ttl_s=spec.turn_ttl_s,
            profile_ttl_s=spec.profile_ttl_s,
        )
        try:
            memory._ensure_user()
        except MemoryBackendError:
            memory.close()
            raise
        return memory

    @property
    def runs_session_id(self) -> str:
        """Return the Zep session that holds the user's finished runs."""
        return f"{self.user_id}-runs"

    # Episodes and search.

    def add_episode(
        self,
        turns: Sequence[Turn],
        *,
        session_id: str,
        at: datetime | None = None,
        source: str = "message",
        ttl_s: float | None = None,
    ) -> list[str]:
        """Add ``turns`` as messages of the Zep session ``session_id``; return their turn ids."""
        if not turns:
            return []
        when = utc(at) or utcnow()
        if ttl_s is None and source == "message":
            ttl_s = self._turn_ttl_s
        expires_at = utcnow() + timedelta(seconds=ttl_s) if ttl_s is not None else None
        ids = [turn.id or uuid.uuid4().hex for turn in turns]
        created = self._ensure_session(session_id, expires_at, owner=self.user_id)
        first = 0 if created else self._message_count(session_id) or 0
        messages = [
            _to_message(
                turn,
                turn_id,
                seq=first + index,
                turn_at=utc(turn.at) or when,
                source=source,
                expires_at=expires_at,
            )
            for index, (turn, turn_id) in enumerate(zip(turns, ids, strict=True))
        ]
        self._call(
            f"add {len(messages)} turns to session {session_id!r}",
            self._client.memory.add,
            _segment(session_id),
            messages=messages,
        )
        return ids

    def search(
        self,
        query: str,
        *,
        budget_tokens: int = 512,
        session_id: str | None = None,
        at: datetime | None = None,
    ) -> MemoryContext:
        """Search Zep's facts and messages for ``query``; pack them to ``budget_tokens``."""
        when = utc(at) or utcnow()
        limit = min(100, max(10, budget_tokens // 16))
        facts = [
            fact
            for result in self._search(query, "facts", session_id, limit)
            if result.fact is not None
            for fact in [_to_fact(result.fact)]
            if fact.holds_at(when)
        ]
        now = utcnow()
        turns = [
            _to_turn(result.message, result.session_id or session_id or "", result.score or 0.0)
            for result in self._search(query, "messages", session_id, limit)
            if result.message is not None
            and result.session_id != self.runs_session_id
            and not _expired(result.message, now)
        ]
        return self._pack(_unique(facts), _unique(turns), budget_tokens)

    def facts(
        self, *, subject: str | None = None, include_invalid: bool = False, limit: int = 100
    ) -> list[Fact]:
        """List the facts Zep reports for the user's sessions, newest first."""
        now = utcnow()
        found: list[Fact] = []
        for session in self._user_sessions():
            memory = self._call_or_none(
                f"read the memory of session {session.session_id!r}",
                self._client.memory.get,
                _segment(session.session_id or ""),
            )
            found.extend(_to_fact(fact) for fact in (memory and memory.relevant_facts) or [])
        chosen = [
            fact
            for fact in _unique(found)
            if (include_invalid or fact.holds_at(now))
            and (subject is None or _mentions(fact, subject))
        ]
        chosen.sort(key=lambda fact: fact.created_at, reverse=True)
        return chosen[:limit]

    # Profile.

    def get_profile(self, user_id: str = "default") -> dict[str, str]:
        """Return the unexpired profile entries of ``user_id`` from the Zep user's metadata."""
        now = utcnow()
        entries = _profiles(self._user_metadata()).get(user_id) or {}
        return {key: entry["value"] for key, entry in entries.items() if _live_entry(entry, now)}

    def set_profile(
        self, key: str, value: str, *, user_id: str = "default", ttl_s: float | None = None
    ) -> None:
        """Set one profile entry in the Zep user's metadata; an empty value removes it."""
        if ttl_s is None:
            ttl_s = self._profile_ttl_s
        expires_at = utcnow() + timedelta(seconds=ttl_s) if ttl_s is not None else None
        metadata = self._user_metadata()
        profiles = _profiles(metadata)
        entries = dict(profiles.get(user_id) or {})
        entries[key] = {"value": value, "expires_at": _iso(expires_at)} if value else None
        profiles[user_id] = entries
        self._write_profiles(metadata, profiles)

    # Forgetting.

    def forget(
        self,
        *,
        fact_id: str | None = None,
        session_id: str | None = None,
        entity: str | None = None,
    ) -> int:
        """Delete a fact, a session of this user (its turns and facts), or the facts about an
        entity; return how many records went (0 for ids that do not exist)."""
        if fact_id is None and session_id is None and entity is None:
            raise ValueError("forget() needs fact_id, session_id or entity")
        gone = 0
        if fact_id is not None:
            gone += self._delete_fact(fact_id)
        if session_id is not None:
            session = self._get_session(session_id)
            if session is not None and session.user_id in (self.user_id, None):
                gone += self._delete_session(session_id)
        if entity is not None:
            mentioning = self.facts(subject=entity, include_invalid=True, limit=_ALL)
            gone += sum(self._delete_fact(fact.id) for fact in mentioning)
        return gone

    def sweep(self, now: datetime | None = None) -> int:
        """Delete the sessions whose every turn has expired and the expired profile entries."""
        when = utc(now) or utcnow()
        gone = self._sweep_profiles(when)
        for session in self._user_sessions():
            expires_at = _parse_time((session.metadata or {}).get(_SESSION_EXPIRY))
            if session.session_id and expires_at is not None and expires_at <= when:
                gone += self._delete_session(session.session_id)
        return gone

    # Runs.

    def record_run(self, run: RunRecord) -> None:
        """Add ``run`` as one message (goal as content, run as JSON) of the runs session."""
        self._ensure_session(self.runs_session_id, None, owner=None)
        message = Message(
            role="goalgraph",
            role_type="system",
            content=run.goal,
            metadata={_RUN: json.dumps(_run_to_json(run))},
        )
        self._call(
            "record a run",
            self._client.memory.add,
            _segment(self.runs_session_id),
            messages=[message],
        )

    def similar_runs(self, goal: str, *, limit: int = 3) -> list[RunRecord]:
        """Return the recorded runs whose goals best match ``goal``, most similar first."""
        if limit <= 0:
            return []
        response = self._call_or_none(
            "search past runs",
            self._client.memory.search_sessions,
            text=goal,
            search_scope="messages",
            session_ids=[self.runs_session_id],
            limit=limit,
        )
        results = (response and response.results) or []
        runs = [
            run
            for result in results
            if result.message is not None
            for run in [_run_from(result.message, result.score or 0.0)]
            if run is not None
        ]
        if not runs:
            runs = self._rank_runs_locally(goal)
        runs.sort(key=lambda run: run.score, reverse=True)
        return runs[:limit]

    def close(self) -> None:
        """Close the HTTP connections; later calls raise ``MemoryBackendError``."""
        if not self._closed:
            self._closed = True
            self._http.close()

    # Calling the server.

    def _call(self, action: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn`` (a zep-python method), turning every failure into ``MemoryBackendError``."""
        if self._closed:
            raise MemoryBackendError("This ZepMemory is closed; open a new one.")
        server = f"Zep server at {self.base_url}"
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            raise MemoryBackendError(_status_message(server, action, exc)) from exc
        except httpx.TimeoutException as exc:
            raise MemoryBackendError(
                f"The {server} did not answer within {self.timeout_s:g} s when asked to "
                f"{action}: check that it is healthy, or raise memory.zep.timeout_s."
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise MemoryBackendError(
                f"Cannot reach the {server} to {action} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}): start the server, or fix memory.zep.base_url."
            ) from exc
        except ValueError as exc:  # Unparseable JSON, or JSON zep-python's models reject.
            raise MemoryBackendError(
                f"The {server} sent an answer zep-python cannot read when asked to "
                f"{action}: check that memory.zep.base_url is a Zep v2 API root (.../api/v2)."
            ) from exc

    def _call_or_none(
        self, action: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Like ``_call``, but return ``None`` when the server answers 404."""
        try:
            return self._call(action, fn, *args, **kwargs)
        except MemoryBackendError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404:
                return None
            raise

    # Users and sessions.

    def _get_user(self) -> User | None:
        return self._call_or_none(
            f"read the Zep user {self.user_id!r}", self._client.user.get, _segment(self.user_id)
        )

    def _ensure_user(self) -> None:
        """Create the Zep user on first use."""
        if self._user_ready:
            return
        if self._get_user() is None:
            self._call(
                f"create the Zep user {self.user_id!r}", self._client.user.add, user_id=self.user_id
            )
        self._user_ready = True

    def _user_metadata(self) -> dict[str, Any]:
        self._ensure_user()
        user = self._get_user()
        return dict((user and user.metadata) or {})

    def _write_profiles(self, metadata: dict[str, Any], profiles: dict[str, Any]) -> None:
        self._call(
            f"update the profile of Zep user {self.user_id!r}",
            self._client.user.update,
            _segment(self.user_id),
            metadata={**metadata, _PROFILE: profiles},
        )

    def _get_session(self, session_id: str) -> Session | None:
        return self._call_or_none(
            f"read session {session_id!r}", self._client.memory.get_session, _segment(session_id)
        )

    def _ensure_session(
        self, session_id: str, expires_at: datetime | None, *, owner: str | None
    ) -> bool:
        """Create the session on first use, else push its expiry to cover ``expires_at``.

        A session's ``goalgraph_expires_at`` is the latest expiry of its turns, or null once any
        turn is kept for good (and for sessions goalgraph did not create).

        Returns:
            Whether the session was created.
        """
        session = self._get_session(session_id)
        if session is None:
            if owner is not None:
                self._ensure_user()
            self._call(
                f"create session {session_id!r}",
                self._client.memory.add_session,
                session_id=session_id,
                user_id=owner,
                metadata={_SESSION_EXPIRY: _iso(expires_at)},
            )
            return True
        if session.user_id != owner:
            raise MemoryBackendError(
                f"Zep session {session_id!r} at {self.base_url} belongs to user "
                f"{session.user_id!r}, not {owner!r}: use another session id or memory.zep.user_id."
            )
        metadata = dict(session.metadata or {})
        old = _parse_time(metadata.get(_SESSION_EXPIRY))
        new = max(old, expires_at) if old is not None and expires_at is not None else None
        if new != old:
            self._call(
                f"update session {session_id!r}",
                self._client.memory.update_session,
                _segment(session_id),
                metadata={**metadata, _SESSION_EXPIRY: _iso(new)},
            )
        return False

    def _user_sessions(self) -> list[Session]:
        """List the user's sessions, page by page (Zep lists every user's sessions)."""
        sessions: dict[str, Session] = {}
        page = 1
        while True:
            response = self._call(
                "list sessions",
                self._client.memory.list_sessions,
                page_number=page,
                page_size=_PAGE,
                order_by="created_at",
                asc=True,
            )
            batch = [s for s in response.sessions or [] if s.session_id not in sessions]
            sessions.update((s.session_id or "", s) for s in batch)
            # A server that ignores paging repeats its sessions: stop when nothing is new.
            if not batch or len(response.sessions or []) < _PAGE:
                break
            page += 1
        return [s for s in sessions.values() if s.user_id == self.user_id]

    def _message_count(self, session_id: str) -> int | None:
        """Count the session's messages; ``None`` when there is no such session."""
        listing = self._call_or_none(
            f"count the turns of session {session_id!r}",
            self._client.memory.get_session_messages,
            _segment(session_id),
            limit=1,
        )
        if listing is None:
            return None
        if listing.total_count is not None:
            return listing.total_count
        return len(listing.messages or [])

    def _delete_session(self, session_id: str) -> int:
        """Delete the session's memory; return its message count plus its fact count."""
        turns = self._message_count(session_id)
        if turns is None:
            return 0
        memory = self._call_or_none(
            f"read the memory of session {session_id!r}",
            self._client.memory.get,
            _segment(session_id),
        )
        facts = len((memory and memory.relevant_facts) or [])
        deleted = self._call_or_none(
            f"delete session {session_id!r}", self._client.memory.delete, _segment(session_id)
        )
        return 0 if deleted is None else turns + facts

    def _delete_fact(self, fact_id: str) -> int:
        deleted = self._call_or_none(
            f"delete fact {fact_id!r}", self._client.memory.delete_fact, _segment(fact_id)
        )
        return 0 if deleted is None else 1

    def _sweep_profiles(self, now: datetime) -> int:
        metadata = self._user_metadata()
        profiles = _profiles(metadata)
        gone = 0
        for user_id, entries in profiles.items():
            for key, entry in (entries or {}).items():
                if isinstance(entry, dict) and not _live_entry(entry, now):
                    entries[key] = None
                    gone += 1
            profiles[user_id] = entries
        if gone:
            self._write_profiles(metadata, profiles)
        return gone

    # Searching and packing.

    def _search(
        self, query: str, scope: str, session_id: str | None, limit: int
    ) -> list[SessionSearchResult]:
        """Search one scope of the given session, or of all the user's sessions."""
        if session_id is not None:
            response = self._call_or_none(
                f"search the {scope} of session {session_id!r}",
                self._client.memory.search_sessions,
                text=query,
                search_scope=scope,
                session_ids=[session_id],
                limit=limit,
            )
        else:
            self._ensure_user()
            response = self._call(
                f"search the {scope} of user {self.user_id!r}",
                self._client.memory.search_sessions,
                text=query,
                search_scope=scope,
                user_id=self.user_id,
                limit=limit,
            )
        return list((response and response.results) or [])

    def _pack(self, facts: list[Fact], turns: list[StoredTurn], budget: int) -> MemoryContext:
        """Keep facts, then turns, in Zep's order, while the rendered context fits ``budget``."""
        total = len(facts) + len(turns)  # facts rank above every turn; no share cap on facts
        kept_facts, kept_turns, tokens = pack_context(
            [(total - i, fact) for i, fact in enumerate(facts)],
            [(len(turns) - i, turn) for i, turn in enumerate(turns)],
            budget_tokens=budget,
            count_tokens=self._count,
            fact_share=1.0,
        )
        return MemoryContext(facts=kept_facts, turns=kept_turns, tokens=tokens)

    def _rank_runs_locally(self, goal: str) -> list[RunRecord]:
        """Score the latest recorded runs by word overlap with ``goal`` (no message search)."""
        memory = self._call_or_none(
            "read past runs",
            self._client.memory.get,
            _segment(self.runs_session_id),
            lastn=_RUN_SCAN,
        )
        runs = [_run_from(message, 0.0) for message in (memory and memory.messages) or []]
        scored = [replace(run, score=_overlap(goal, run.goal)) for run in runs if run is not None]
        return [run for run in scored if run.score > 0]


# Conversions between goalgraph's values and Zep's.


def _segment(value: str) -> str:
    """Escape an id for a URL path segment (zep-python puts ids in paths unescaped)."""
    return quote(value, safe="")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    """Read a time the server sent; ``None`` when it is missing or unreadable."""
    if not isinstance(value, str | datetime) or not value:
        return None
    try:
        return utc(value)
    except ValueError:
        return None


def _role_type(speaker: str) -> str:
    return _ROLE_TYPES.get(speaker.strip().lower(), "user")


def _to_message(
    turn: Turn,
    turn_id: str,
    *,
    seq: int,
    turn_at: datetime,
    source: str,
    expires_at: datetime | None,
) -> Message:
    own: dict[str, Any] = {
        "turn_id": turn_id,
        "seq": seq,
        "at": turn_at.isoformat(),
        "source": source,
        "expires_at": _iso(expires_at),
    }
    return Message(
        role=turn.speaker,
        role_type=_role_type(turn.speaker),
        content=turn.text,
        metadata={**turn.metadata, _TURN_META: own},
    )


def _turn_meta(message: Message) -> dict[str, Any]:
    meta = (message.metadata or {}).get(_TURN_META)
    return meta if isinstance(meta, dict) else {}


def _expired(message: Message, now: datetime) -> bool:
    expires_at = _parse_time(_turn_meta(message).get("expires_at"))
    return expires_at is not None and expires_at <= now


def _to_turn(message: Message, session_id: str, score: float) -> StoredTurn:
    meta = _turn_meta(message)
    return StoredTurn(
        id=str(meta.get("turn_id") or message.uuid_ or ""),
        session_id=session_id,
        speaker=message.role or str(message.role_type or ""),
        text=message.content or "",
        at=_parse_time(meta.get("at")) or _parse_time(message.created_at) or utcnow(),
        seq=meta["seq"] if isinstance(meta.get("seq"), int) else 0,
        score=score,
    )


def _to_fact(fact: ZepFact) -> Fact:
    """Map a Zep fact; validity fields are read when the server sends them."""
    extra = fact.dict()
    invalid_at = _parse_time(extra.get("invalid_at")) or _parse_time(extra.get("expired_at"))
    return Fact(
        id=fact.uuid_ or "",
        subject="",
        predicate="",
        object="",
        text=fact.fact or "",
        valid_at=_parse_time(extra.get("valid_at")),
        invalid_at=invalid_at,
        created_at=_parse_time(fact.created_at) or utcnow(),
    )


def _unique(items: list[Item]) -> list[Item]:
    """Drop repeats by ``id``, keeping the first (best ranked) of each."""
    seen: set[str] = set()
    kept: list[Item] = []
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            kept.append(item)
    return kept


def _mentions(fact: Fact, subject: str) -> bool:
    pattern = re.compile(rf"(?<!\w){re.escape(subject.strip())}(?!\w)", re.IGNORECASE)
    return any(pattern.search(text) for text in (fact.text, fact.subject, fact.object))


def _profiles(metadata: dict[str, Any]) -> dict[str, Any]:
    profiles = metadata.get(_PROFILE)
    return dict(profiles) if isinstance(profiles, dict) else {}


def _live_entry(entry: Any, now: datetime) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
        return False
    expires_at = _parse_time(entry.get("expires_at"))
    return bool(entry["value"]) and (expires_at is None or now < expires_at)


def _run_to_json(run: RunRecord) -> dict[str, Any]:
    return {
        "goal": run.goal,
        "status": run.status,
        "answer": run.answer,
        "plan": list(run.plan),
        "lessons": list(run.lessons),
        "thread_id": run.thread_id,
        "finished_at": _iso(utc(run.finished_at)),
    }


def _run_from(message: Message, score: float) -> RunRecord | None:
    """Rebuild a run from its message; ``None`` for messages that hold none."""
    try:
        data = json.loads((message.metadata or {})[_RUN])
        return RunRecord(
            goal=str(data["goal"]),
            status=str(data["status"]),
            answer=str(data.get("answer", "")),
            plan=tuple(str(step) for step in data.get("plan", ())),
            lessons=tuple(str(lesson) for lesson in data.get("lessons", ())),
            thread_id=str(data.get("thread_id", "")),
            finished_at=_parse_time(data.get("finished_at")) or utcnow(),
            score=score,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _overlap(query: str, text: str) -> float:
    """Score ``text`` by the share of ``query``'s words it contains."""
    wanted = set(_WORD.findall(query.lower()))
    return len(wanted & set(_WORD.findall(text.lower()))) / len(wanted) if wanted else 0.0


def _status_message(server: str, action: str, exc: ApiError) -> str:
    """Explain an HTTP error answer in one line."""
    status = exc.status_code
    if status in (401, 403):
        return (
            f"The {server} refused authentication (HTTP {status}) when asked to "
            f"{action}: set memory.zep.api_key (GOALGRAPH_MEMORY__ZEP__API_KEY) to its API key."
        )
    body = exc.body
    detail = getattr(body, "message", None) or body
    if isinstance(detail, dict):
        detail = detail.get("message") or json.dumps(detail)
    hint = (
        "check that memory.zep.base_url is a Zep v2 API root (.../api/v2)"
        if status == 404
        else "see the server's log"
    )
    text = " ".join(str(detail or "no detail").split())[:200]
    return f"The {server} answered HTTP {status} ({text}) when asked to {action}: {hint}."
