"""Open the checkpointer a spec names: a SQLite file (the default) or a PostgreSQL database.

``open_checkpointer(spec)`` is what ``Agent`` uses; ``checkpointer_from_url(url)`` opens one by
URL; ``make_checkpointer`` is the factory ``langgraph.json`` names for ``langgraph dev``. All three
are async context managers that close the connection on exit.

Example:
    >>> async def count_threads(url: str) -> None:               # doctest: +SKIP
    ...     async with checkpointer_from_url(url) as saver:
    ...         print([c async for c in saver.alist(None, limit=1)])
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from goalgraph.spec import AgentSpec

__all__ = [
    "CONNECT_TIMEOUT_S",
    "CheckpointError",
    "checkpointer_from_url",
    "make_checkpointer",
    "open_checkpointer",
    "open_sqlite_checkpointer",
    "redact_url",
]

CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a PostgreSQL server before giving up (libpq ``connect_timeout``)."""

_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
_SQLITE_PREFIX = "sqlite:///"
_QUERY_PASSWORD = re.compile(r"(?i)(^|&)(password=)[^&]*")
# Passwords found without parsing the URL, so that even a malformed one is never echoed.
_SECRETS = re.compile(r"^[^:]*://[^:/@?#]*:([^@]*)@|[?&]password=([^&]*)", re.IGNORECASE)


class CheckpointError(RuntimeError):
    """The checkpoint database cannot be used; nothing in it was changed."""


async def open_sqlite_checkpointer(path: str | Path) -> AsyncSqliteSaver:
    """Open (creating if needed) the checkpoint database at ``path``.

    WAL lets readers (``goalgraph history``) work while a run writes, and ``synchronous=NORMAL``
    makes a checkpoint cost ~1 ms instead of an fsync each; a power loss can drop the last few
    checkpoints but never corrupts the file. Close it with ``await saver.conn.close()``.

    Raises:
        CheckpointError: if the file is not a usable SQLite database. The file is left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path))
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        async with conn.execute("SELECT count(*) FROM checkpoints") as cursor:
            await cursor.fetchone()
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise CheckpointError(
            f"the checkpoint database {path} is unreadable ({exc}). It was left untouched; "
            "move it aside to start fresh, or point checkpoint_path elsewhere."
        ) from None
    return saver


def redact_url(url: str) -> str:
    """Return ``url`` with its password (after ``user:`` or as ``password=``) shown as ``***``.

    Example:
        >>> redact_url("postgresql://bob:secret@db:5432/runs?sslmode=require")
        'postgresql://bob:***@db:5432/runs?sslmode=require'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.partition(':')[0]}://<unparsable URL>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
    query = _QUERY_PASSWORD.sub(r"\1\2***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@asynccontextmanager
async def checkpointer_from_url(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer at ``url`` and close it on exit.

    Args:
        url: ``postgresql://user:password@host:port/database`` (or ``postgres://``), whose
            tables are created if missing, or ``sqlite:///relative.sqlite`` /
            ``sqlite:////absolute.sqlite``.

    Raises:
        CheckpointError: if the URL is not supported, or the database cannot be reached or set
            up (server down, bad address, authentication). The message is one line and names
            the URL without its password.
    """
    scheme = url.partition(":")[0].lower()
    if scheme in _POSTGRES_SCHEMES:
        async with _postgres_checkpointer(url) as saver:
            yield saver
    elif url.startswith(_SQLITE_PREFIX) and len(url) > len(_SQLITE_PREFIX):
        async with _sqlite_checkpointer(Path(url[len(_SQLITE_PREFIX) :])) as saver:
            yield saver
    else:
        raise CheckpointError(
            f"unsupported checkpoint URL {redact_url(url)}: "
            "use postgresql://user@host:port/database or sqlite:///path/to/file.sqlite"
        )


@asynccontextmanager
async def open_checkpointer(
    spec_or_url: AgentSpec | str,
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer of a spec (its ``checkpoint_url``, else its SQLite file) or a URL.

    Raises:
        CheckpointError: see ``checkpointer_from_url`` and ``open_sqlite_checkpointer``.
    """
    if isinstance(spec_or_url, AgentSpec) and not spec_or_url.checkpoint_url:
        async with _sqlite_checkpointer(spec_or_url.resolved_checkpoint_path()) as saver:
            yield saver
        return
    url = spec_or_url if isinstance(spec_or_url, str) else spec_or_url.checkpoint_url
    assert url is not None
    async with checkpointer_from_url(url) as saver:
        yield saver


@asynccontextmanager
async def make_checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The checkpointer factory that ``langgraph.json`` names for ``langgraph dev``.

    It honours ``GOALGRAPH_CHECKPOINT_URL`` (then ``GOALGRAPH_CHECKPOINT_PATH``, then the default
    SQLite file under the data directory), like ``Agent``.
    """
    async with open_checkpointer(AgentSpec()) as saver:
        yield saver


@asynccontextmanager
async def _sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    saver = await open_sqlite_checkpointer(path)
    try:
        yield saver
    finally:
        await saver.conn.close()


@asynccontextmanager
async def _postgres_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    # Imported here so that SQLite users never load psycopg. The connection is opened as
    # AsyncPostgresSaver.from_conn_string opens it, plus a connect timeout.
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg import Error as PsycopgError
    from psycopg.rows import dict_row

    try:
        conn = await AsyncConnection.connect(
            url,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
    except PsycopgError as exc:
        raise CheckpointError(_postgres_message(url, "is unreachable", exc)) from None
    async with conn:
        saver = AsyncPostgresSaver(conn=conn)
        try:
            await saver.setup()
        except PsycopgError as exc:
            raise CheckpointError(_postgres_message(url, "could not be set up", exc)) from None
        yield saver


def _postgres_message(url: str, what: str, exc: Exception) -> str:
    """Return a one-line error naming ``url`` without its password."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    detail = detail.replace(url, redact_url(url))
    for match in _SECRETS.finditer(url):
        for secret in filter(None, match.groups()):
            detail = detail.replace(secret, "***")
    return f"the PostgreSQL checkpoint database {redact_url(url)} {what}: {detail}"
