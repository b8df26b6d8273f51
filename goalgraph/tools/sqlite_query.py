"""The engine of the ``sqlite_query`` tool: one read-only SQL statement on a workspace database.

Reading only is enforced by three independent layers, each enough on its own for ordinary writes:

1. the file is opened with ``mode=ro`` (SQLite's read-only open flag; it also never creates a
   missing file);
2. ``PRAGMA query_only=ON`` makes SQLite refuse every statement that would change the database;
3. an authorizer, consulted by SQLite while it compiles the statement, denies everything except
   reading tables and columns, calling functions (not ``load_extension``), recursive CTEs and a
   list of read-only pragmas. It is deny-by-default, so ATTACH (and with it ``VACUUM INTO``,
   which could write a new file even through a read-only connection), DETACH, transactions,
   schema and data changes and pragma assignments are all refused before anything runs.

In addition no database may be attached at all (``SQLITE_LIMIT_ATTACHED`` is 0), schema code in
the file may only call innocuous functions (``trusted_schema=OFF``), and a progress handler aborts
a statement that runs longer than the time budget.

Known limit: table-valued pragma functions (``SELECT * FROM pragma_table_info('t')``) are refused,
because SQLite asks to update ``sqlite_master`` when it first sets them up; ``PRAGMA
table_info(t)`` gives the same answer.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from goalgraph.tools.workspace import Workspace, WorkspaceError

__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_TIME_BUDGET_S", "SqliteQueryError", "query"]

DEFAULT_MAX_ROWS = 200
"""Most rows a query returns; more are left out with a note."""
DEFAULT_TIME_BUDGET_S = 5.0
"""Seconds a statement may run before it is aborted."""
MAX_CELL_CHARS = 200
"""Longest value shown in a cell; longer ones are cut with ``...``."""
MAX_HINT_TABLES = 12
"""Most tables a "no such table" or "no such column" error names."""
MAX_HINT_COLUMNS = 12
"""Most columns per table such an error names."""
MAX_HINT_CHARS = 200
"""Longest schema such an error shows; beyond it, only the table names."""

_NO_SUCH = re.compile(r"^no such (table|column): (.+)$")

_PROGRESS_STEPS = 1000  # SQLite VM instructions between two looks at the clock
_SQLITE_HEADER = b"SQLite format 3\x00"

# Pragmas that only report; they may take an argument (a table or index name, a row limit).
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
        "database_list",
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
            file, or the statement is empty, several, writing, invalid or too slow.
    """
    path = _database_path(ws, database)
    if not sql.strip():
        raise SqliteQueryError("the SQL statement is empty")
    with contextlib.closing(_connect(path, time_budget_s)) as conn:
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchmany(max_rows + 1)
        except sqlite3.Error as exc:
            problem = _explain(exc, database, time_budget_s)
            raise SqliteQueryError(
                f"{problem}{_schema_hint(conn, str(exc), sql, database)}"
            ) from None
        columns = [column[0] for column in cursor.description or ()]
    return _format_table(columns, rows, max_rows)


def _database_path(ws: Workspace, database: str) -> Path:
    try:
        path = ws.resolve(database)
    except WorkspaceError as exc:
        raise SqliteQueryError(str(exc)) from None
    if path.is_dir():
        raise SqliteQueryError(f"{database!r} is a folder, not a database file")
    if not path.is_file():
        raise SqliteQueryError(f"no such database: {database!r}{ws.nearby(path, 'file')}")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise SqliteQueryError(f"cannot read {database!r}: {exc.strerror or exc}") from None
    # An empty file is a valid (empty) database to SQLite; anything else needs the header.
    if header and header != _SQLITE_HEADER:
        raise SqliteQueryError(f"{database!r} is not a SQLite database")
    return path


def _connect(path: Path, time_budget_s: float) -> sqlite3.Connection:
    """Open ``path`` read-only with every guard of the module docstring in place."""
    uri = f"file:{quote(str(path))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=min(time_budget_s, 5.0))
    except sqlite3.Error as exc:
        raise SqliteQueryError(f"cannot open database {path.name!r}: {exc}") from None
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_authorize)
        deadline = time.monotonic() + time_budget_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
    except sqlite3.Error as exc:
        conn.close()
        raise SqliteQueryError(f"cannot open database {path.name!r}: {exc}") from None
    return conn


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


def _explain(exc: sqlite3.Error, database: str, time_budget_s: float) -> SqliteQueryError:
    """Turn a SQLite error into a one-line message that says what to do."""
    message = str(exc)
    if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in message:
        return SqliteQueryError("only one SQL statement per query; send them one at a time")
    if message == "interrupted":
        return SqliteQueryError(f"query stopped: it ran longer than {time_budget_s:g} s")
    if "not authorized" in message or "authorization denied" in message or "readonly" in message:
        return SqliteQueryError(
            "refused: sqlite_query only reads (SELECT, WITH, VALUES, EXPLAIN, read-only PRAGMAs "
            "like table_info); writes, schema changes, ATTACH and pragma settings are not allowed"
        )
    if "file is not a database" in message:
        return SqliteQueryError(f"{database!r} is not a SQLite database")
    return SqliteQueryError(f"SQL error: {message}")


def _schema_hint(conn: sqlite3.Connection, message: str, sql: str, database: str) -> str:
    """Return what to add to a "no such table" or "no such column" error: what does exist.

    For a missing table, the tables (and views) with their columns, or only their names when
    that is too long; for a missing column, the columns of the tables the statement names.
    Only names from the database's own schema are shown, never its location on the host.
    """
    missing = _NO_SUCH.match(message)
    if missing is None:
        return ""
    try:
        schema = _schema(conn)
    except sqlite3.Error:
        return ""
    if not schema:
        return "; the database has no tables"
    what, name = missing.group(1), missing.group(2)
    if what == "table":
        hint = ""
        if name.casefold() in {database.casefold(), Path(database).name.casefold()}:
            hint = f"; {name!r} is the database file, name a table in it"
        return f"{hint}; tables: {_render_schema(schema)}"
    words = {word.casefold() for word in re.findall(r"\w+", sql)}
    named = {table: columns for table, columns in schema.items() if table.casefold() in words}
    if len(named) == 1:
        table, columns = next(iter(named.items()))
        return f"; {table} has columns: {', '.join(columns)}"
    return f"; columns: {_render_schema(named or schema)}"


def _schema(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Return up to ``MAX_HINT_TABLES`` tables and views with up to ``MAX_HINT_COLUMNS`` columns."""
    conn.set_progress_handler(None, 0)  # the statement's own time budget may be spent
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT ?",
        (MAX_HINT_TABLES + 1,),
    ).fetchall()
    schema: dict[str, list[str]] = {}
    for (name,) in rows[:MAX_HINT_TABLES]:
        quoted = '"' + str(name).replace('"', '""') + '"'
        columns = conn.execute(f"PRAGMA table_info({quoted})").fetchall()
        schema[str(name)] = [str(column[1]) for column in columns[:MAX_HINT_COLUMNS]]
        if len(columns) > MAX_HINT_COLUMNS:
            schema[str(name)].append("...")
    if len(rows) > MAX_HINT_TABLES:
        schema["..."] = []
    return schema


def _render_schema(schema: dict[str, list[str]]) -> str:
    """Render ``table(column, ...)`` entries within ``MAX_HINT_CHARS``; names only if too long."""
    full = ", ".join(
        f"{table}({', '.join(columns)})" if columns else table for table, columns in schema.items()
    )
    return full if len(full) <= MAX_HINT_CHARS else ", ".join(schema)[:MAX_HINT_CHARS]


def _format_table(columns: list[str], rows: list[Any], max_rows: int) -> str:
    if not columns:
        return "(statement returned no result table)"
    lines = [" | ".join(columns)]
    lines += [" | ".join(_cell(value) for value in row) for row in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append(f"[showing the first {max_rows} rows; more were left out, refine the query]")
    else:
        lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<blob {len(value)} bytes>"
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 3] + "..."
