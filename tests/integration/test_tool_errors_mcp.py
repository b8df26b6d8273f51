"""The recovery hints of goalgraph's own tools, through its real MCP server process.

What the agent reads is the one-line ``error`` of a ``ToolResult`` (capped at 300 characters), so
each hint is checked there: it must survive the server, the MCP transport and the tool box.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from goalgraph.spec import McpServerSpec
from goalgraph.tools.toolbox import ToolBox

pytestmark = pytest.mark.timeout(120)

START_S = 60.0


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace with a note in a folder and a shop database, next to a secret."""
    ws = tmp_path / "ws"
    (ws / "notes").mkdir(parents=True)
    (ws / "notes" / "todo.txt").write_text("buy milk", encoding="utf-8")
    (ws / "data").mkdir()
    conn = sqlite3.connect(ws / "data" / "shop.db")
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.execute("INSERT INTO customers (name, city) VALUES ('Ada', 'London')")
    conn.close()
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    return ws


@pytest.fixture
async def box(workspace: Path) -> AsyncIterator[ToolBox]:
    """goalgraph's own MCP server over ``workspace``, as a separate process."""
    spec = McpServerSpec(
        command=sys.executable, args=["-m", "goalgraph.tools.server", "--workspace", str(workspace)]
    )
    async with ToolBox.open({"goalgraph": spec}, start_timeout_s=START_S) as opened:
        yield opened


async def test_read_file_names_the_nearest_paths(box: ToolBox) -> None:
    result = await box.call("read_file", {"path": "todo.txt"})
    assert (result.ok, result.error) == (
        False,
        "tool 'read_file' failed: no such file: 'todo.txt'; did you mean 'notes/todo.txt'?",
    )
    retry = await box.call("read_file", {"path": "notes/todo.txt"})  # copied from the hint
    assert (retry.ok, retry.content) == (True, "buy milk")

    result = await box.call("list_files", {"path": "note"})
    assert (
        result.error == "tool 'list_files' failed: no such folder: 'note'; did you mean 'notes/'?"
    )
    result = await box.call("read_file", {"path": "./notes"})
    assert result.error == (
        "tool 'read_file' failed: './notes' is a folder, not a file; it holds 'notes/todo.txt'"
    )
    result = await box.call("read_file", {"path": "zzzzzz.pdf"})
    assert result.error == (
        "tool 'read_file' failed: no such file: 'zzzzzz.pdf'; the workspace holds 'data/', 'notes/'"
    )


async def test_sqlite_query_names_tables_and_columns_not_the_host_path(
    box: ToolBox, workspace: Path
) -> None:
    result = await box.call(
        "sqlite_query", {"database": "data/shop.db", "sql": "SELECT * FROM shop.db"}
    )
    assert result.error == (
        "tool 'sqlite_query' failed: SQL error: no such table: shop.db; 'shop.db' is the database "
        "file, name a table in it; tables: customers(id, name, city)"
    )
    result = await box.call(
        "sqlite_query", {"database": "data/shop.db", "sql": "SELECT town FROM customers"}
    )
    assert result.error == (
        "tool 'sqlite_query' failed: SQL error: no such column: town; "
        "customers has columns: id, name, city"
    )
    result = await box.call("sqlite_query", {"database": "shop.db", "sql": "SELECT 1"})
    assert result.error == (
        "tool 'sqlite_query' failed: no such database: 'shop.db'; did you mean 'data/shop.db'?"
    )
    for failed in [result.content, result.error or ""]:
        assert str(workspace) not in failed
    retry = await box.call(
        "sqlite_query", {"database": "data/shop.db", "sql": "SELECT city FROM customers"}
    )
    assert (retry.ok, retry.content) == (True, "city\nLondon\n(1 row)")


async def test_calculator_says_what_it_accepts(box: ToolBox) -> None:
    result = await box.call("calculator", {"expression": "80*15%"})
    assert result.error is not None
    assert result.error.startswith(
        "tool 'calculator' failed: invalid expression '80*15%': invalid syntax; "
        "write 15% as 15/100; it accepts numbers, + - * / // % **"
    )
    assert result.error.endswith("e.g. sqrt(16)*(2+3)")  # the whole hint fits the one line
    result = await box.call("calculator", {"expression": "1/0"})
    assert result.error == "tool 'calculator' failed: division by zero"


async def test_python_error_is_the_exception_and_the_failing_line(box: ToolBox) -> None:
    code = "values = [3, 1, 2]\nprint(sorted(values))\nprint(values.sort_by())\n"
    result = await box.call("python", {"code": code})
    assert result.error == (
        "tool 'python' failed: the snippet raised an exception; snippet output: "
        "AttributeError: 'list' object has no attribute 'sort_by'; "
        "at line 3: print(values.sort_by())"
    )
    assert "Traceback" not in result.content
    result = await box.call("python", {"code": "print(\n"})
    assert result.error == (
        "tool 'python' failed: the snippet raised an exception; "
        "snippet output: SyntaxError: '(' was never closed; at line 1: print("
    )
