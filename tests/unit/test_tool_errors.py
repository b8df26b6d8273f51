"""Errors of goalgraph's own tools say what exists or what is accepted, so a retry can fix them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from goalgraph.tools.calculator import ACCEPTED, CalculatorError, calculate
from goalgraph.tools.sandbox import SandboxResult, failure_summary
from goalgraph.tools.sqlite_query import SqliteQueryError, query
from goalgraph.tools.workspace import MAX_SUGGESTION_SCAN, Workspace, WorkspaceError


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A small workspace: two notes, a database in a folder, a hidden folder and a secret."""
    workspace = Workspace(tmp_path / "ws")
    root = workspace.root
    (root / "docs").mkdir()
    (root / "docs" / "notes.txt").write_text("n", encoding="utf-8")
    (root / "Notes.md").write_text("n", encoding="utf-8")
    (root / "todo.md").write_text("t", encoding="utf-8")
    (root / ".goalgraph" / "artifacts").mkdir(parents=True)
    (root / ".goalgraph" / "artifacts" / "output-1.txt").write_text("a", encoding="utf-8")
    (root / "data").mkdir()
    conn = sqlite3.connect(root / "data" / "shop.db")
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total)")
        conn.execute("CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100")
    conn.close()
    (tmp_path / "outside-secret.txt").write_text("s", encoding="utf-8")
    return workspace


def error_of(action: Callable[..., object], *args: object) -> str:
    """Return the message of the error ``action(*args)`` raises."""
    with pytest.raises((WorkspaceError, SqliteQueryError, CalculatorError)) as caught:
        action(*args)
    return str(caught.value)


# --- missing files name the nearest existing paths ---------------------------------------------


def test_a_missing_file_names_the_nearest_files(ws: Workspace) -> None:
    assert error_of(ws.read_text, "notes.txt") == (
        "no such file: 'notes.txt'; did you mean 'docs/notes.txt' or 'Notes.md'?"
    )
    assert error_of(ws.read_text, "shop.db") == (
        "no such file: 'shop.db'; did you mean 'data/shop.db'?"
    )
    # A folder is not suggested for a file, nor a file for a folder.
    assert "did you mean 'docs/'" in error_of(ws.list_dir, "doc")
    assert "'docs/'" not in error_of(ws.read_text, "docs.txt").split("holds")[0]


def test_without_a_similar_path_the_nearest_folder_is_shown(ws: Workspace) -> None:
    assert error_of(ws.read_text, "zzzz.bin") == (
        "no such file: 'zzzz.bin'; the workspace holds 'Notes.md', 'todo.md', 'data/', 'docs/'"
    )
    assert error_of(ws.read_text, "data/qqqq/zz.csv") == (
        "no such file: 'data/qqqq/zz.csv'; 'data/' holds 'shop.db'"
    )
    (ws.root / "empty").mkdir()
    assert error_of(ws.read_text, "empty/qqqqqqqqqqqq") == (
        "no such file: 'empty/qqqqqqqqqqqq'; 'empty/' is empty"
    )
    assert "no such file or folder: 'zzzz'; the workspace holds" in error_of(ws.search, "x", "zzzz")


def test_hidden_paths_are_suggested_only_for_a_hidden_path(ws: Workspace) -> None:
    assert ".goalgraph" not in error_of(ws.read_text, "output-1.txt")
    assert error_of(ws.read_text, ".goalgraph/artifacts/output-l.txt").endswith(
        "did you mean '.goalgraph/artifacts/output-1.txt'?"
    )


def test_suggestions_never_leave_the_workspace(ws: Workspace, tmp_path: Path) -> None:
    (ws.root / "link").symlink_to(tmp_path)  # a link to the folder that holds the secret
    message = error_of(ws.read_text, "outside-secret.txt")
    assert "secret" not in message.replace("'outside-secret.txt'", "")
    assert str(tmp_path) not in message
    # A path outside is still refused as such, with nothing suggested.
    assert error_of(ws.read_text, "../outside-secret.txt") == (
        "path '../outside-secret.txt' leads outside the workspace"
    )


def test_suggestions_in_a_big_workspace_are_bounded(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "big")
    for index in range(3 * MAX_SUGGESTION_SCAN):
        (ws.root / f"log_{index:05d}.txt").touch()
    (ws.root / "deep" / "er").mkdir(parents=True)
    (ws.root / "deep" / "er" / "report.csv").touch()
    started = time.perf_counter()
    message = error_of(ws.read_text, "log_00017.tx")
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed  # ~0.1 s here: at most MAX_SUGGESTION_SCAN entries are compared
    assert message.split("did you mean")[1].count("'log_") == 3
    # The folder the path names is looked at first, even past the scan bound.
    assert error_of(ws.read_text, "deep/er/reprt.csv").endswith(
        "did you mean 'deep/er/report.csv'?"
    )
    assert error_of(ws.read_text, "qqq/zz").endswith("and many more")


# --- sqlite_query names the tables and columns that exist -----------------------------------


def test_a_missing_table_names_the_tables_with_their_columns(ws: Workspace) -> None:
    assert error_of(query, ws, "data/shop.db", "SELECT * FROM customer") == (
        "SQL error: no such table: customer; tables: big_orders(id, customer_id, total), "
        "customers(id, name, city), orders(id, customer_id, total)"
    )


def test_the_database_file_used_as_a_table_is_explained(ws: Workspace) -> None:
    message = error_of(query, ws, "data/shop.db", "SELECT count(*) FROM shop.db")
    assert message.startswith(
        "SQL error: no such table: shop.db; 'shop.db' is the database file, name a table in it; "
        "tables: big_orders"
    )


def test_a_missing_column_names_that_tables_columns(ws: Workspace) -> None:
    assert error_of(query, ws, "data/shop.db", "SELECT town FROM customers") == (
        "SQL error: no such column: town; customers has columns: id, name, city"
    )
    # Two tables named (one through an alias): both tables' columns.
    message = error_of(
        query, ws, "data/shop.db", "SELECT c.town FROM customers c JOIN orders o ON o.id = c.id"
    )
    assert message == (
        "SQL error: no such column: c.town; columns: customers(id, name, city), "
        "orders(id, customer_id, total)"
    )


def test_a_missing_database_names_the_nearest_one(ws: Workspace) -> None:
    assert error_of(query, ws, "shop.db", "SELECT 1") == (
        "no such database: 'shop.db'; did you mean 'data/shop.db'?"
    )


def test_schema_hints_never_show_the_host_path(ws: Workspace) -> None:
    absolute = str(ws.root / "data" / "shop.db")
    for sql in ["SELECT * FROM nope", "SELECT nope FROM orders", "SELECT count(*) FROM shop.db"]:
        message = error_of(query, ws, "data/shop.db", sql)
        assert str(ws.root) not in message and "/tmp" not in message
        assert absolute not in error_of(query, ws, absolute, sql).replace(f"{absolute!r}", "")


def test_an_empty_database_and_a_huge_schema(ws: Workspace) -> None:
    (ws.root / "empty.db").write_bytes(b"")
    assert error_of(query, ws, "empty.db", "SELECT * FROM t") == (
        "SQL error: no such table: t; the database has no tables"
    )
    conn = sqlite3.connect(ws.root / "wide.db")
    with conn:
        columns = ", ".join(f"column_{i} TEXT" for i in range(40))
        for table in range(30):
            conn.execute(f"CREATE TABLE table_{table:02d} ({columns})")
    conn.close()
    message = error_of(query, ws, "wide.db", "SELECT * FROM t")
    assert len(message) < 260, message  # too long with columns: the table names only
    assert message.startswith("SQL error: no such table: t; tables: table_00, table_01")


# --- the calculator says what it accepts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("15%", "invalid expression '15%': invalid syntax; write 15% as 15/100"),
        ("80 * 12.5 %", "write 12.5% as 12.5/100"),
        ("Compute 100/4", "invalid expression 'Compute 100/4': invalid syntax"),
        ("2 & 10", "operator & is not supported"),
        ("x + 1", "unknown name 'x'"),
        ("fib(20)", "unknown function 'fib'"),
        ("12*(3+4) (tool)", "unknown name 'tool'"),
        ("2(3+4)", "'2' is followed by parentheses; write * to multiply"),
        ("'a' + 1", "'a' is not a number"),
        ("", "expression is empty"),
    ],
)
def test_input_the_calculator_does_not_understand_says_what_it_accepts(
    expression: str, problem: str
) -> None:
    message = error_of(calculate, expression)
    assert problem in message
    assert message.endswith(ACCEPTED)
    assert len(message) < 240


@pytest.mark.parametrize("expression", ["1/0", "9**9**9", "sqrt(-1)", "sqrt(1, 2)"])
def test_math_errors_stay_short(expression: str) -> None:
    assert ACCEPTED not in error_of(calculate, expression)


def test_a_long_expression_is_not_echoed_whole() -> None:
    message = error_of(calculate, "y" * 150 + " + 1")
    assert "'" + "y" * 37 + "...'" in message and "y" * 38 not in message


# --- python: the exception line and the line that failed -----------------------------------


def failed(output: str, reason: str = "the snippet raised an exception") -> SandboxResult:
    return SandboxResult(False, output, 111, reason, 0.1)


def test_python_failure_names_the_exception_and_the_line() -> None:
    code = "import json\nprint('hi')\ndata = json.loads('{bad')\nprint(data)"
    output = (
        "hi\nTraceback (most recent call last):\n"
        '  File "<snippet>", line 3, in <module>\n'
        '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n'
        "    return _default_decoder.decode(s)\n"
        "json.decoder.JSONDecodeError: Expecting property name: line 1 column 2 (char 1)\n"
    )
    assert failure_summary(failed(output), code) == (
        "the snippet raised an exception\n"
        "snippet output: json.decoder.JSONDecodeError: Expecting property name: line 1 column 2 "
        "(char 1)\n"
        "at line 3: data = json.loads('{bad')"
    )


def test_python_syntax_error_and_multi_line_message() -> None:
    output = (
        "  File \"<snippet>\", line 1\n    print(\n         ^\nSyntaxError: '(' was never closed\n"
    )
    assert failure_summary(failed(output), "print(") == (
        "the snippet raised an exception\n"
        "snippet output: SyntaxError: '(' was never closed\nat line 1: print("
    )
    output = (
        "Traceback (most recent call last):\n"
        '  File "<snippet>", line 2, in <module>\n'
        "ValueError: first line\nsecond line\n"
    )
    assert failure_summary(failed(output), "x = 1\nraise ValueError('...')") == (
        "the snippet raised an exception\n"
        "snippet output: ValueError: first line\nat line 2: raise ValueError('...')"
    )


def test_python_refusals_and_limits_keep_their_reason() -> None:
    output = (
        "Traceback (most recent call last):\n"
        '  File "<snippet>", line 1, in <module>\n'
        "PermissionError: [Errno 1] ctypes is disabled in the sandbox\n"
    )
    assert failure_summary(
        failed(output, "ctypes is disabled in the sandbox"), "import ctypes"
    ) == (
        "ctypes is disabled in the sandbox\n"
        "snippet output: PermissionError: [Errno 1] ctypes is disabled in the sandbox\n"
        "at line 1: import ctypes"
    )
    timeout = failed("working...\n", "killed: exceeded the 10 s time limit")
    assert failure_summary(timeout, "while True: pass") == (
        "killed: exceeded the 10 s time limit\nsnippet output: working..."
    )
    assert failure_summary(failed("", "killed: exceeded the 1 s CPU time limit"), "x") == (
        "killed: exceeded the 1 s CPU time limit"
    )


def test_python_summary_is_bounded() -> None:
    code = "x = 1\n" + "y" * 5000
    output = (
        "Traceback (most recent call last):\n"
        '  File "<snippet>", line 2, in <module>\n'
        f"NameError: name '{'y' * 5000}' is not defined\n"
    )
    summary = failure_summary(failed(output), code)
    assert len(summary) < 340
    assert summary.splitlines()[2].startswith("at line 2: yyy")
