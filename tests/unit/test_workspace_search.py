"""Workspace.search finds text in workspace files and never leaves the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goalgraph.tools.workspace import (
    MAX_SEARCH_FILE_BYTES,
    MAX_SEARCH_LINE_CHARS,
    Workspace,
    WorkspaceError,
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with notes in two folders, next to an outside folder with a secret."""
    workspace = Workspace(tmp_path / "ws")
    root = workspace.root
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("buy milk\nCall Bob\nmilkshake?\n", "utf-8")
    (root / "notes" / "b.md").write_text("# Milk facts\r\nnothing else\n", "utf-8")
    (root / "readme.md").write_text("no match here", "utf-8")
    (root / "latin1.txt").write_bytes("crème MILK\n".encode("latin-1"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("milk secret\n", "utf-8")
    return workspace


def test_finds_matching_lines_ignoring_case(ws: Workspace) -> None:
    assert ws.search("MILK") == [
        "latin1.txt:1: cr\ufffdme MILK",
        "notes/b.md:1: # Milk facts",
        "notes/todo.txt:1: buy milk",
        "notes/todo.txt:3: milkshake?",
    ]
    assert ws.search("call bob", "notes") == ["notes/todo.txt:2: Call Bob"]
    assert ws.search("milk", "notes/b.md") == ["notes/b.md:1: # Milk facts"]
    assert ws.search("nowhere") == []


def test_query_is_plain_text_not_a_regex(ws: Workspace) -> None:
    assert ws.search("milk.") == []
    assert ws.search("shake?") == ["notes/todo.txt:3: milkshake?"]


def test_skips_binary_large_and_tool_folders(ws: Workspace) -> None:
    root = ws.root
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00milk\x00")
    (root / "big.log").write_bytes(b"milk\n" * (MAX_SEARCH_FILE_BYTES // 5 + 1))
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("milk", "utf-8")
    os.mkfifo(root / "pipe")  # opening a FIFO for reading would block without O_NONBLOCK
    result = ws.search("milk")
    assert not any(line.startswith(("image.png", "big.log", ".git", "pipe")) for line in result)
    assert result[-1] == f"[skipped 1 file over {MAX_SEARCH_FILE_BYTES} bytes]"
    assert ws.search("milk", ".git") == [".git/config:1: milk"]


def test_does_not_follow_symlinks(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (ws.root / "link-to-folder").symlink_to(outside)
    (ws.root / "link-to-file.txt").symlink_to(outside / "secret.txt")
    (ws.root / "notes" / "inner-link.txt").symlink_to(ws.root / "notes" / "todo.txt")
    result = ws.search("milk")
    assert not any("secret" in line or "link" in line for line in result), result
    with pytest.raises(WorkspaceError, match="leads outside the workspace"):
        ws.search("milk", "link-to-folder")
    with pytest.raises(WorkspaceError, match="leads outside the workspace"):
        ws.search("milk", "link-to-file.txt")


def test_respects_max_results(ws: Workspace) -> None:
    (ws.root / "many.txt").write_text("milk\n" * 30, "utf-8")
    result = ws.search("milk", "many.txt", max_results=5)
    assert result == [
        *(f"many.txt:{n}: milk" for n in range(1, 6)),
        "[stopped at 5 matches; search a narrower text or folder]",
    ]
    assert len(ws.search("milk", max_results=3)) == 4


def test_long_lines_are_cut_around_the_match(ws: Workspace) -> None:
    (ws.root / "long.txt").write_text("a" * 1000 + "needle" + "b" * 1000, "utf-8")
    [line] = ws.search("needle", "long.txt")
    shown = line.removeprefix("long.txt:1: ")
    assert "needle" in shown
    assert shown.startswith("...") and shown.endswith("...")
    assert len(shown) == MAX_SEARCH_LINE_CHARS + 6


@pytest.mark.parametrize(
    ("query", "path", "message"),
    [
        ("milk", "..", "leads outside the workspace"),
        ("milk", "../outside", "leads outside the workspace"),
        ("milk", "/etc", "is outside the workspace"),
        ("milk", "missing", "no such file or folder: 'missing'"),
        ("  ", ".", "the search text is empty"),
    ],
)
def test_refusals(ws: Workspace, query: str, path: str, message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        ws.search(query, path)
