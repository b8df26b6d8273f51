"""sqlite_query against another process that can write the workspace: SQLite opens the database
by name, so a link swapped in after the check must not make it read a database from outside."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from goalgraph.tools import sqlite_query
from goalgraph.tools.sqlite_query import SqliteQueryError, query
from goalgraph.tools.workspace import Workspace


def make_db(path: Path, value: str) -> None:
    """A database with one table ``t`` holding ``value``."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    conn.close()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace holding ``data.db``, next to an outside database with a secret."""
    workspace = Workspace(tmp_path / "ws")
    make_db(workspace.root / "data.db", "harmless")
    make_db(tmp_path / "outside.db", "SECRET")
    return workspace


def test_a_link_swapped_in_after_the_check_is_not_read(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "harmless" in query(ws, "data.db", "SELECT x FROM t")
    run_worker = sqlite_query._run_worker

    def swap_then_run(*args: Any) -> dict[str, Any]:
        # The attacker's move, between the server's check and SQLite's open in the worker.
        (ws.root / "data.db").rename(ws.root / "kept.db")
        (ws.root / "data.db").symlink_to(tmp_path / "outside.db")
        return run_worker(*args)

    monkeypatch.setattr(sqlite_query, "_run_worker", swap_then_run)
    with pytest.raises(SqliteQueryError) as caught:
        query(ws, "data.db", "SELECT x FROM t")
    assert str(caught.value) == (
        "'data.db' was replaced while it was being opened (by another program); "
        "nothing was read from it; try again"
    )


def test_a_hard_link_to_an_outside_database_is_refused(ws: Workspace, tmp_path: Path) -> None:
    os.link(tmp_path / "outside.db", ws.root / "linked.db")
    with pytest.raises(SqliteQueryError, match=r"'linked\.db' has 2 hard links") as caught:
        query(ws, "linked.db", "SELECT x FROM t")
    assert "SECRET" not in str(caught.value)
