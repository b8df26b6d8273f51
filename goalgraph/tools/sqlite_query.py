"""The engine of the ``sqlite_query`` tool: one read-only SQL statement on a workspace database.

The statement runs in a worker process (``sqlite_worker.py``), where reading only is enforced by
three independent layers (``mode=ro``, ``query_only`` and a deny-by-default authorizer: no
writes, ATTACH, ``VACUUM INTO`` or extension loading; see that module), and where every resource
is bounded: the worker's address space (``WORKER_ADDRESS_SPACE_MB``), SQLite's heap
(``HEAP_LIMIT_MB``, temporary tables included), the length of one value
(``MAX_VALUE_BYTES``) and of the statement, and the time: a progress handler aborts the
statement at its budget, and the worker is killed if it is still running ``KILL_GRACE_S``
later (a single SQLite function call, like ``printf('%.*c', 1000000000, 'x')``, is never
interrupted from inside). So no query can grow the server's memory or hold its thread past the
budget, and a crafted database file that crashes SQLite crashes only the worker.

Errors name the database as the caller did, relative to the workspace, never by its host path.

Known limit: table-valued pragma functions (``SELECT * FROM pragma_table_info('t')``) are refused,
because SQLite asks to update ``sqlite_master`` when it first sets them up; ``PRAGMA
table_info(t)`` gives the same answer. ``PRAGMA database_list`` is refused: it shows the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from goalgraph.tools.workspace import SQLITE_HEADER, Workspace, WorkspaceError

__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_TIME_BUDGET_S", "SqliteQueryError", "query"]

DEFAULT_MAX_ROWS = 200
"""Most rows a query returns; more are left out with a note."""
DEFAULT_TIME_BUDGET_S = 5.0
"""Seconds a statement may run before it is aborted."""
MAX_CELL_CHARS = 200
"""Longest value shown in a cell; longer ones are cut with ``...``."""
MAX_TABLE_CHARS = 200_000
"""Rows stop being added once the table is this long (with the note that more were left out)."""
MAX_HINT_TABLES = 12
"""Most tables a "no such table" or "no such column" error names."""
MAX_HINT_COLUMNS = 12
"""Most columns per table such an error names."""
MAX_HINT_CHARS = 200
"""Longest schema such an error shows; beyond it, only the table names."""
MAX_VALUE_BYTES = 16 * 1024 * 1024
"""Longest string or blob a query may read or make (``SQLITE_LIMIT_LENGTH``)."""
MAX_SQL_BYTES = 100_000
"""Longest statement (``SQLITE_LIMIT_SQL_LENGTH``)."""
HEAP_LIMIT_MB = 256
"""SQLite's hard heap limit in the worker: page cache, sorts, temporary tables, values."""
WORKER_ADDRESS_SPACE_MB = 512
"""The worker's address-space limit (RLIMIT_AS): SQLite's heap plus Python's copy of a row."""
KILL_GRACE_S = 0.5
"""Seconds past the budget before the worker is killed (its progress handler stops first)."""

_WORKER = str(Path(__file__).with_name("sqlite_worker.py"))
_REFUSED = (
    "refused: sqlite_query only reads (SELECT, WITH, VALUES, EXPLAIN, read-only PRAGMAs "
    "like table_info); writes, schema changes, ATTACH and pragma settings are not allowed"
)


class SqliteQueryError(ValueError):
    """A query that was refused or failed; the message says why in one line."""


def query(
    ws: Workspace,
    database: str,
    sql: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
) -> str:
    """Run one read-only SQL statement on a SQLite file in the workspace.

    Args:
        ws: The workspace the database must be in.
        database: Path of the database file, relative to the workspace.
        sql: One statement: SELECT, WITH ... SELECT, VALUES, EXPLAIN or a read-only PRAGMA.
        max_rows: Most rows returned; a note says when more were left out.
        time_budget_s: Seconds the statement may run.

    Returns:
        A text table: a header line, one line per row (``|`` between values), then a row count.

    Raises:
        SqliteQueryError: If the database is missing or outside the workspace, not a SQLite
            file, or the statement is empty, several, writing, invalid, too slow or too big.
    """
    path, identity = _database_path(ws, database)
    if not sql.strip():
        raise SqliteQueryError("the SQL statement is empty")
    reply = _run_worker(path, database, sql, max_rows, time_budget_s, identity)
    if "error" in reply:
        raise SqliteQueryError(_message(reply, str(path), database, time_budget_s))
    return _format_table(reply["columns"], reply["rows"], bool(reply["more"]))


def _database_path(ws: Workspace, database: str) -> tuple[Path, tuple[int, int]]:
    """Return where the database is and its file's identity (device, inode).

    The file is checked through the workspace's descriptors (``Workspace.open_file``: a
    regular file with one link, no link out, no blocking on a FIFO). SQLite can only open it
    by name, so the worker compares the file it opened with this identity.
    """
    try:
        path = ws.resolve(database)
    except WorkspaceError as exc:
        raise SqliteQueryError(str(exc)) from None
    if path.is_dir():
        raise SqliteQueryError(f"{database!r} is a folder, not a database file")
    if not path.exists():  # a FIFO or device exists: open_file says what it is
        raise SqliteQueryError(f"no such database: {database!r}{ws.nearby(path, 'file')}")
    try:
        with ws.open_file(database) as opened:
            header = os.pread(opened.fd, len(SQLITE_HEADER), 0)
            info = os.fstat(opened.fd)
    except WorkspaceError as exc:
        raise SqliteQueryError(str(exc)) from None
    except OSError as exc:
        raise SqliteQueryError(f"cannot read {database!r}: {exc.strerror or exc}") from None
    # An empty file is a valid (empty) database to SQLite; anything else needs the header.
    if header and header != SQLITE_HEADER:
        raise SqliteQueryError(f"{database!r} is not a SQLite database")
    return ws.root.joinpath(*opened.parts), (info.st_dev, info.st_ino)


def _run_worker(
    path: Path,
    database: str,
    sql: str,
    max_rows: int,
    time_budget_s: float,
    identity: tuple[int, int],
) -> dict[str, Any]:
    """Run the statement in a worker process; return its reply, or an error reply of our own."""
    request = {
        "path": str(path),
        "identity": list(identity),
        "database": database,
        "sql": sql,
        "max_rows": max_rows,
        "time_budget_s": time_budget_s,
        "max_value_bytes": MAX_VALUE_BYTES,
        "max_sql_bytes": MAX_SQL_BYTES,
        "heap_mb": HEAP_LIMIT_MB,
        "address_space_mb": WORKER_ADDRESS_SPACE_MB,
        "max_table_chars": MAX_TABLE_CHARS,
        "max_cell_chars": MAX_CELL_CHARS,
        "max_hint_tables": MAX_HINT_TABLES,
        "max_hint_columns": MAX_HINT_COLUMNS,
        "max_hint_chars": MAX_HINT_CHARS,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-B", _WORKER],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=time_budget_s + KILL_GRACE_S,
            cwd="/",
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},
        )
    except subprocess.TimeoutExpired:  # subprocess.run killed it
        return {"error": "interrupted", "detail": "", "hint": ""}
    try:
        reply: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        # Killed by its address-space limit in C, or crashed: say which, not what it printed.
        kind = "memory" if done.returncode in (-6, -9, -11, 1) else "crashed"
        return {"error": kind, "detail": f"exit code {done.returncode}", "hint": ""}
    return reply


def _message(reply: dict[str, Any], host_path: str, database: str, time_budget_s: float) -> str:
    """Word the worker's error in one line that says what to do, naming ``database`` only."""
    kind = reply["error"]
    detail = str(reply.get("detail", "")).replace(host_path, database)
    if kind == "one_statement":
        return "only one SQL statement per query; send them one at a time"
    if kind == "interrupted":
        return f"query stopped: it ran longer than {time_budget_s:g} s"
    if kind == "refused":
        return _REFUSED
    if kind == "not_a_database":
        return f"{database!r} is not a SQLite database"
    if kind == "too_big":
        return (
            f"query stopped: a string or blob would be longer than {MAX_VALUE_BYTES} bytes; "
            "select less (substr, length, LIMIT)"
        )
    if kind == "memory":
        return f"query stopped: it needed more than {HEAP_LIMIT_MB} MiB of memory; select less"
    if kind == "open":
        return f"cannot open database {database!r}: {detail}"
    if kind == "changed":
        return (
            f"{database!r} was replaced while it was being opened (by another program); "
            "nothing was read from it; try again"
        )
    if kind == "crashed":
        return f"query failed: the SQLite worker ended unexpectedly ({detail})"
    hint = str(reply.get("hint", "")).replace(host_path, database)
    return f"SQL error: {detail}{hint}"


def _format_table(columns: list[str], rows: list[list[str]], more: bool) -> str:
    if not columns:
        return "(statement returned no result table)"
    lines = [" | ".join(columns)]
    lines += [" | ".join(row) for row in rows]
    if more:
        lines.append(f"[showing the first {len(rows)} rows; more were left out, refine the query]")
    else:
        lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)
