"""sqlite_query reads workspace databases and refuses every way of writing or escaping."""

from __future__ import annotations

import os
import resource
import sqlite3
import time
from pathlib import Path

import pytest

from goalgraph.tools.sqlite_query import SqliteQueryError, query
from goalgraph.tools.workspace import Workspace

REFUSED = "refused: sqlite_query only reads"


def make_db(path: Path, rows: int = 3) -> Path:
    """Create a database with table ``fruit(id, name, price, photo)`` holding ``rows`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT, price REAL, photo)")
        conn.executemany(
            "INSERT INTO fruit (name, price, photo) VALUES (?, ?, ?)",
            [(f"fruit {i}", i + 0.5, None) for i in range(rows)],
        )
    conn.close()
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with ``data/shop.db`` (3 rows), next to an outside database."""
    workspace = Workspace(tmp_path / "ws")
    make_db(workspace.root / "data" / "shop.db")
    make_db(tmp_path / "outside.db")
    return workspace


def snapshot(ws: Workspace) -> dict[str, bytes]:
    """Every file under the workspace and next to it, with its bytes."""
    top = ws.root.parent
    return {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}


def test_select_is_formatted_as_a_table(ws: Workspace) -> None:
    conn = sqlite3.connect(ws.root / "data" / "shop.db")
    with conn:
        conn.execute("UPDATE fruit SET name = 'two\nlines', photo = x'0102' WHERE id = 2")
    conn.close()
    result = query(ws, "data/shop.db", "SELECT id, name, price, photo FROM fruit ORDER BY id")
    assert result == (
        "id | name | price | photo\n"
        "1 | fruit 0 | 0.5 | NULL\n"
        "2 | two\\nlines | 1.5 | <blob 2 bytes>\n"
        "3 | fruit 2 | 2.5 | NULL\n"
        "(3 rows)"
    )


def test_reading_queries_work(ws: Workspace) -> None:
    cte = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3) "
    assert query(ws, "data/shop.db", cte + "SELECT sum(x) AS total FROM n;") == "total\n6\n(1 row)"
    assert query(ws, "data/shop.db", "SELECT * FROM fruit WHERE 0") == (
        "id | name | price | photo\n(0 rows)"
    )
    assert query(ws, "data/shop.db", "VALUES (1, 'a')") == "column1 | column2\n1 | a\n(1 row)"
    tables = query(ws, "data/shop.db", "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert tables == "name\nfruit\n(1 row)"
    assert "price | REAL" in query(ws, "data/shop.db", "PRAGMA table_info(fruit)")
    assert query(ws, "data/shop.db", "PRAGMA user_version") == "user_version\n0\n(1 row)"


def test_odd_file_names_are_quoted_in_the_uri(ws: Workspace) -> None:
    make_db(ws.root / "we?ird #1 %20&mode=rw.db", rows=1)
    assert query(ws, "we?ird #1 %20&mode=rw.db", "SELECT id FROM fruit") == "id\n1\n(1 row)"
    with pytest.raises(SqliteQueryError, match=f"^{REFUSED}"):
        query(ws, "we?ird #1 %20&mode=rw.db", "DELETE FROM fruit")


def test_row_cap_adds_a_note(ws: Workspace) -> None:
    make_db(ws.root / "many.db", rows=30)
    result = query(ws, "many.db", "SELECT id FROM fruit", max_rows=10)
    lines = result.splitlines()
    assert lines[0] == "id"
    assert lines[1:11] == [str(i) for i in range(1, 11)]
    assert lines[11:] == ["[showing the first 10 rows; more were left out, refine the query]"]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO fruit (name) VALUES ('kiwi')",
        "UPDATE fruit SET price = 0",
        "DELETE FROM fruit",
        "DROP TABLE fruit",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "ALTER TABLE fruit ADD COLUMN y",
        "CREATE INDEX i ON fruit (name)",
        "REPLACE INTO fruit (id, name) VALUES (1, 'x')",
        "PRAGMA writable_schema=1",
        "PRAGMA query_only=0",
        "PRAGMA user_version=7",
        "PRAGMA journal_mode=WAL",
        "BEGIN",
        "VACUUM",
        "ANALYZE",
        "SELECT load_extension('/tmp/evil.so')",
    ],
)
def test_writes_and_setting_changes_are_refused(ws: Workspace, sql: str) -> None:
    before = snapshot(ws)
    with pytest.raises(SqliteQueryError, match=f"^{REFUSED}"):
        query(ws, "data/shop.db", sql)
    assert snapshot(ws) == before
    assert "(3 rows)" in query(ws, "data/shop.db", "SELECT * FROM fruit")


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{other}' AS other",
        "ATTACH DATABASE '{new}' AS other",
        "VACUUM INTO '{new}'",
    ],
)
def test_attach_and_vacuum_into_are_refused(ws: Workspace, tmp_path: Path, sql: str) -> None:
    new = ws.root / "new.db"
    statement = sql.format(other=tmp_path / "outside.db", new=new)
    before = snapshot(ws)
    with pytest.raises(SqliteQueryError, match=f"^{REFUSED}"):
        query(ws, "data/shop.db", statement)
    assert not new.exists()
    assert snapshot(ws) == before


def test_two_statements_are_refused(ws: Workspace) -> None:
    with pytest.raises(SqliteQueryError, match=r"^only one SQL statement per query"):
        query(ws, "data/shop.db", "SELECT 1; DELETE FROM fruit")
    assert "(3 rows)" in query(ws, "data/shop.db", "SELECT * FROM fruit")


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("../outside.db", "path '../outside.db' leads outside the workspace"),
        ("{outside}", "is outside the workspace; use a path relative to it"),
        ("link.db", "path 'link.db' leads outside the workspace"),
        ("missing.db", "no such database: 'missing.db'"),
        ("data", "'data' is a folder, not a database file"),
        ("notes.txt", "'notes.txt' is not a SQLite database"),
        ("pipe.db", "'pipe.db' is not a regular file (a FIFO); only regular files are read"),
    ],
)
def test_bad_database_paths(ws: Workspace, tmp_path: Path, database: str, message: str) -> None:
    (ws.root / "link.db").symlink_to(tmp_path / "outside.db")
    os.mkfifo(ws.root / "pipe.db")  # refused at once, never opened for a blocking read
    (ws.root / "notes.txt").write_text("just some text, long enough to have a header", "utf-8")
    with pytest.raises(SqliteQueryError) as caught:
        query(ws, database.format(outside=tmp_path / "outside.db"), "SELECT * FROM fruit")
    assert message in str(caught.value)
    assert not (ws.root / "missing.db").exists()


def test_sql_errors_are_one_line(ws: Workspace) -> None:
    with pytest.raises(SqliteQueryError, match=r'^SQL error: near "SELEC": syntax error$'):
        query(ws, "data/shop.db", "SELEC * FROM fruit")
    # A missing table names the tables that exist (tests/unit/test_tool_errors.py has more).
    with pytest.raises(SqliteQueryError, match=r"^SQL error: no such table: veg; tables: fruit"):
        query(ws, "data/shop.db", "SELECT * FROM veg")
    with pytest.raises(SqliteQueryError, match=r"^the SQL statement is empty$"):
        query(ws, "data/shop.db", "  ")


def test_runaway_query_is_stopped_by_the_time_budget(ws: Workspace) -> None:
    runaway = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n"
    started = time.perf_counter()
    with pytest.raises(SqliteQueryError, match=r"^query stopped: it ran longer than 0.5 s$"):
        query(ws, "data/shop.db", runaway, time_budget_s=0.5)
    assert time.perf_counter() - started < 2.0


BIG = "query stopped: a string or blob would be longer than 16777216 bytes"
SLOW = "query stopped: it ran longer than 1 s"
HUNGRY = "query stopped: it needed more than 256 MiB of memory"


@pytest.mark.parametrize(
    ("sql", "budget_s", "message"),
    [
        ("SELECT length(zeroblob(2000000000))", 5.0, BIG),
        # One function call that loops per character: no progress handler sees it; killed.
        ("SELECT length(printf('%.*c', 1000000000, 'x'))", 1.0, SLOW),
        (
            "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT s FROM r",
            5.0,
            BIG,
        ),
        # UNION keeps every row it has seen: 8 MB each, in memory, until the heap limit.
        (
            "WITH RECURSIVE r(n, b) AS (SELECT 1, zeroblob(8000000) UNION "
            "SELECT n + 1, zeroblob(8000000) FROM r) SELECT count(*) FROM r",
            5.0,
            HUNGRY,
        ),
        ("SELECT " + ", ".join(["zeroblob(16000000)"] * 40), 5.0, HUNGRY),
    ],
    ids=["zeroblob", "printf", "doubling-cte", "union-cte", "wide-row"],
)
def test_huge_or_endless_values_stop_within_the_budget_outside_the_server(
    ws: Workspace, sql: str, budget_s: float, message: str
) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(SqliteQueryError) as caught:
        query(ws, "data/shop.db", sql, time_budget_s=budget_s)
    assert str(caught.value).startswith(message)
    assert time.perf_counter() - started < budget_s + 1.5
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 32 * 1024  # the values lived in the worker, not in this process


def test_errors_never_show_the_database_s_host_path(ws: Workspace) -> None:
    # PRAGMA database_list is where SQLite itself names the file.
    with pytest.raises(SqliteQueryError, match=f"^{REFUSED}") as caught:
        query(ws, "data/shop.db", "PRAGMA database_list")
    assert str(ws.root) not in str(caught.value)
    for sql in ["SELECT * FROM pragma_database_list", "SELECT * FROM nowhere", "SELEC 1"]:
        with pytest.raises(SqliteQueryError) as caught:
            query(ws, "data/shop.db", sql)
        assert str(ws.root) not in str(caught.value)
