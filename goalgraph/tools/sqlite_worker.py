"""The ``sqlite_query`` worker: one read-only statement in a process of its own, with its limits.

``goalgraph.tools.sqlite_query`` runs this file as ``python -I -S -B sqlite_worker.py``, with a
JSON request on stdin (``path``, ``identity``, ``sql``, ``max_rows``, ``time_budget_s`` and the
limits), and reads one JSON reply from stdout: ``{"columns": [...], "rows": [[cell, ...], ...],
"more": bool}``, or ``{"error": KIND, "detail": TEXT, "hint": TEXT}``. At run time it imports
only the standard library.

A process of its own because SQLite cannot bound everything from inside: a single function call
is never interrupted by the progress handler (``printf('%.*c', 1000000000, 'x')`` loops per
character whatever the length limit), and its heap limit is process-wide, which would also bind
every other SQLite user of the server. Here the worker sets, before it opens the file: an
address-space limit, SQLite's hard and soft heap limits, temporary tables in memory (so under
the heap limit, not on disk), and the length limits; the parent kills it at the time budget.

Reading only is enforced by three independent layers, each enough on its own for ordinary
writes: the file is opened with ``mode=ro``; ``PRAGMA query_only=ON``; and an authorizer,
consulted while SQLite compiles the statement, that denies everything except reading tables and
columns, calling functions (not ``load_extension``), recursive CTEs and a list of read-only
pragmas. It is deny-by-default, so ATTACH (and with it ``VACUUM INTO``), DETACH, transactions,
schema and data changes and pragma assignments are all refused before anything runs. In
addition no database may be attached (``SQLITE_LIMIT_ATTACHED`` is 0), and schema code in the
file may only call innocuous functions (``trusted_schema=OFF``).
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import sys
import time
from typing import Any
from urllib.parse import quote

_PROGRESS_STEPS = 1000  # SQLite VM instructions between two looks at the clock
_NO_SUCH = re.compile(r"^no such (table|column): (.+)$")

# Pragmas that only report; they may take an argument (a table or index name, a row limit).
# Not database_list: it shows the database file's path on the host.
_REPORTING_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
        "compile_options",
    }
)
# Pragmas that set a value when given one; only their reading form (no argument) is allowed.
_SETTING_PRAGMAS = frozenset(
    {
        "application_id",
        "encoding",
        "foreign_keys",
        "freelist_count",
        "journal_mode",
        "page_count",
        "page_size",
        "schema_version",
        "user_version",
    }
)
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})


def main() -> None:
    """Answer the request on stdin with one JSON reply on stdout."""
    request = json.loads(sys.stdin.read())
    mib = 1024 * 1024
    address_space = int(request["address_space_mb"]) * mib
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    try:
        reply = _answer(request)
    except MemoryError:
        reply = {"error": "memory", "detail": "", "hint": ""}
    sys.stdout.write(json.dumps(reply))


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    """Run the statement; return the reply."""
    try:
        conn = _connect(request)
    except sqlite3.Error as exc:
        return {"error": "open", "detail": str(exc), "hint": ""}
    try:
        if not _holds_file(tuple(request["identity"])):
            return {"error": "changed", "detail": "", "hint": ""}
        try:
            cursor = conn.execute(request["sql"])
            columns = [column[0] for column in cursor.description or ()]
            rows, more = _fetch(cursor, int(request["max_rows"]), request)
        except sqlite3.Error as exc:
            kind = _kind(exc)
            hint = _schema_hint(conn, str(exc), request) if kind == "sql" else ""
            return {"error": kind, "detail": str(exc), "hint": hint}
        return {"columns": columns, "rows": rows, "more": more}
    finally:
        conn.close()


def _holds_file(identity: tuple[int, ...]) -> bool:
    """Whether one of this process's descriptors is the file ``identity`` (device, inode) names.

    SQLite opens the database by name (it even resolves ``/proc/self/fd`` links back to a name),
    so a link swapped in after the server checked the file would lead it elsewhere. It opens the
    file when it connects and keeps it open: if none of our descriptors is the checked file,
    what SQLite opened is another one.
    """
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: try the low descriptors, where SQLite's is
        descriptors = list(range(1024))
    for fd in descriptors:
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == identity:
            return True
    return False


def _connect(request: dict[str, Any]) -> sqlite3.Connection:
    """Open the database read-only with every guard and limit in place."""
    budget = float(request["time_budget_s"])
    uri = f"file:{quote(request['path'])}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=min(budget, 5.0))
    heap = int(request["heap_mb"]) * 1024 * 1024
    # Process-wide settings, which is why this is a process of its own.
    conn.execute(f"PRAGMA hard_heap_limit={heap}")
    conn.execute(f"PRAGMA soft_heap_limit={heap // 2}")
    conn.execute("PRAGMA temp_store=MEMORY")  # sorts and temporary tables count in the heap
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA trusted_schema=OFF")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, int(request["max_value_bytes"]))
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, int(request["max_sql_bytes"]))
    conn.setlimit(sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)
    conn.set_authorizer(_authorize)
    deadline = time.monotonic() + budget
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
    return conn


def _fetch(
    cursor: sqlite3.Cursor, max_rows: int, request: dict[str, Any]
) -> tuple[list[list[str]], bool]:
    """Return up to ``max_rows`` rows as cells, and whether there were more.

    Each row becomes short cells at once, so at most one row's values are held.
    """
    rows: list[list[str]] = []
    size, max_chars, max_cell = 0, int(request["max_table_chars"]), int(request["max_cell_chars"])
    for row in cursor:
        if len(rows) == max_rows or size > max_chars:
            return rows, True
        cells = [_cell(value, max_cell) for value in row]
        size += sum(len(cell) + 3 for cell in cells)
        rows.append(cells)
    return rows, False


def _cell(value: object, max_chars: int) -> str:
    """Render one value in at most ``max_chars`` characters."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<blob {len(value)} bytes>"
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: str | None) -> int:
    """Allow reading only (see the module docstring); SQLite calls this while compiling."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = (arg2 or "").lower() in _DENIED_FUNCTIONS
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _REPORTING_PRAGMAS or (name in _SETTING_PRAGMAS and arg2 is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _kind(exc: sqlite3.Error) -> str:
    """Classify a SQLite error for the parent, which words the message."""
    message = str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in message:
        return "one_statement"
    if message == "interrupted":
        return "interrupted"
    if "not authorized" in message or "authorization denied" in message or "readonly" in message:
        return "refused"
    if "file is not a database" in message:
        return "not_a_database"
    if name == "SQLITE_TOOBIG" or "string or blob too big" in message:
        return "too_big"
    if name == "SQLITE_NOMEM" or message == "out of memory":
        return "memory"
    return "sql"


def _schema_hint(conn: sqlite3.Connection, message: str, request: dict[str, Any]) -> str:
    """Return what to add to a "no such table" or "no such column" error: what does exist.

    For a missing table, the tables (and views) with their columns, or only their names when
    that is too long; for a missing column, the columns of the tables the statement names.
    Only names from the database's own schema are shown, never its location on the host.
    """
    missing = _NO_SUCH.match(message)
    if missing is None:
        return ""
    try:
        schema = _schema(conn, request)
    except sqlite3.Error:
        return ""
    if not schema:
        return "; the database has no tables"
    what, name = missing.group(1), missing.group(2)
    database = str(request["database"])
    if what == "table":
        hint = ""
        if name.casefold() in {database.casefold(), database.rsplit("/", 1)[-1].casefold()}:
            hint = f"; {name!r} is the database file, name a table in it"
        return f"{hint}; tables: {_render_schema(schema, int(request['max_hint_chars']))}"
    words = {word.casefold() for word in re.findall(r"\w+", request["sql"])}
    named = {table: columns for table, columns in schema.items() if table.casefold() in words}
    if len(named) == 1:
        table, columns = next(iter(named.items()))
        return f"; {table} has columns: {', '.join(columns)}"
    return f"; columns: {_render_schema(named or schema, int(request['max_hint_chars']))}"


def _schema(conn: sqlite3.Connection, request: dict[str, Any]) -> dict[str, list[str]]:
    """Return the first tables and views with their first columns (the request says how many)."""
    max_tables, max_columns = int(request["max_hint_tables"]), int(request["max_hint_columns"])
    conn.set_progress_handler(None, 0)  # the statement's own time budget may be spent
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT ?",
        (max_tables + 1,),
    ).fetchall()
    schema: dict[str, list[str]] = {}
    for (name,) in rows[:max_tables]:
        quoted = '"' + str(name).replace('"', '""') + '"'
        columns = conn.execute(f"PRAGMA table_info({quoted})").fetchall()
        schema[str(name)] = [str(column[1]) for column in columns[:max_columns]]
        if len(columns) > max_columns:
            schema[str(name)].append("...")
    if len(rows) > max_tables:
        schema["..."] = []
    return schema


def _render_schema(schema: dict[str, list[str]], max_chars: int) -> str:
    """Render ``table(column, ...)`` entries within ``max_chars``; names only if too long."""
    full = ", ".join(
        f"{table}({', '.join(columns)})" if columns else table for table, columns in schema.items()
    )
    return full if len(full) <= max_chars else ", ".join(schema)[:max_chars]


if __name__ == "__main__":
    main()
