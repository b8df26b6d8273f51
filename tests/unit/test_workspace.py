"""The workspace confines file access to one folder and explains every refusal."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from goalgraph.tools.workspace import Workspace, WorkspaceError


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the workspace, holding a secret."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret", encoding="utf-8")
    return folder


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with a file and a sub-folder."""
    workspace = Workspace(tmp_path / "ws")
    (workspace.root / "notes").mkdir()
    (workspace.root / "notes" / "todo.txt").write_text("buy milk\n", encoding="utf-8")
    (workspace.root / "readme.md").write_text("# hi", encoding="utf-8")
    return workspace


def test_creates_root_and_resolves_it(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "a" / "b")
    assert ws.root == (tmp_path / "a" / "b").resolve()
    assert ws.root.is_dir()


def test_missing_root_without_create(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not an existing folder"):
        Workspace(tmp_path / "missing", create=False)


def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(WorkspaceError):
        Workspace(tmp_path / "file")


def test_read_list_write_roundtrip(ws: Workspace) -> None:
    assert ws.read_text("notes/todo.txt") == "buy milk\n"
    assert ws.read_text("./notes/../notes/todo.txt") == "buy milk\n"
    assert ws.list_dir() == ["notes/", "readme.md"]
    assert ws.list_dir("notes") == ["todo.txt"]
    assert ws.write_text("out/deep/result.txt", "héllo") == len("héllo".encode())
    assert ws.read_text("out/deep/result.txt") == "héllo"
    assert ws.write_text("out/deep/result.txt", "replaced") == 8
    assert ws.read_text("out/deep/result.txt") == "replaced"
    assert ws.list_dir("out/deep") == ["result.txt"]  # no temporary files left behind


def test_root_aliases(ws: Workspace) -> None:
    assert ws.resolve("") == ws.root
    assert ws.resolve(".") == ws.root
    assert ws.resolve("notes/..") == ws.root
    assert ws.relative("notes/todo.txt") == "notes/todo.txt"
    assert ws.relative(".") == "."


def test_absolute_path_inside_is_allowed(ws: Workspace) -> None:
    assert ws.read_text(str(ws.root / "readme.md")) == "# hi"


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../outside/secret.txt",
        "notes/../../outside/secret.txt",
        "notes/../../../../../../etc/passwd",
        "./../ws/../outside/secret.txt",
    ],
)
def test_dotdot_escapes_are_refused(ws: Workspace, outside: Path, path: str) -> None:
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read_text(path)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_text(path, "pwned")
    assert (outside / "secret.txt").read_text(encoding="utf-8") == "top secret"


def test_sibling_with_common_prefix_is_outside(ws: Workspace) -> None:
    sibling = ws.root.parent / (ws.root.name + "2")
    sibling.mkdir()
    (sibling / "x.txt").write_text("x", encoding="utf-8")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read_text(str(sibling / "x.txt"))
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read_text(f"../{sibling.name}/x.txt")


@pytest.mark.parametrize("path", ["/etc/passwd", "/", "/tmp", "//etc/passwd"])
def test_absolute_paths_outside_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.resolve(path)


def test_symlink_to_outside_file_is_refused(ws: Workspace, outside: Path) -> None:
    (ws.root / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read_text("link.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_text("link.txt", "pwned")
    assert (outside / "secret.txt").read_text(encoding="utf-8") == "top secret"


def test_symlinked_dir_to_outside_is_refused(ws: Workspace, outside: Path) -> None:
    (ws.root / "door").symlink_to(outside, target_is_directory=True)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.list_dir("door")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.read_text("door/secret.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_text("door/new.txt", "pwned")
    assert not (outside / "new.txt").exists()


def test_dangling_symlink_to_outside_cannot_create_files(ws: Workspace, outside: Path) -> None:
    (ws.root / "trap.txt").symlink_to(outside / "created.txt")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        ws.write_text("trap.txt", "pwned")
    assert not (outside / "created.txt").exists()


def test_symlink_inside_is_followed(ws: Workspace) -> None:
    (ws.root / "alias").symlink_to(ws.root / "notes", target_is_directory=True)
    assert ws.read_text("alias/todo.txt") == "buy milk\n"


def test_symlink_loop_is_refused(ws: Workspace) -> None:
    (ws.root / "loop").symlink_to(ws.root / "loop")
    with pytest.raises(WorkspaceError):
        ws.read_text("loop")


def test_workspace_root_behind_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    ws = Workspace(tmp_path / "alias")
    ws.write_text("a.txt", "ok")
    assert (real / "a.txt").read_text(encoding="utf-8") == "ok"
    assert ws.read_text(str(tmp_path / "alias" / "a.txt")) == "ok"


def test_nul_byte_is_refused(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="NUL"):
        ws.read_text("readme.md\x00.txt")


def test_read_errors_are_clear(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match=re.escape("no such file: 'nope.txt'")):
        ws.read_text("nope.txt")
    # A folder read as a file names what it holds, as paths the next call can copy.
    with pytest.raises(
        WorkspaceError,
        match=re.escape("'./notes' is a folder, not a file; it holds 'notes/todo.txt'"),
    ):
        ws.read_text("./notes")
    (ws.root / "empty").mkdir()
    with pytest.raises(WorkspaceError, match="'empty' is a folder, not a file; it is empty"):
        ws.read_text("empty")
    with pytest.raises(WorkspaceError, match=re.escape("it holds 'readme.md', 'empty/', 'notes/'")):
        ws.read_text(".")
    (ws.root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(WorkspaceError, match="not a UTF-8 text file"):
        ws.read_text("blob.bin")
    (ws.root / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(WorkspaceError, match="not a UTF-8 text file"):
        ws.read_text("latin1.txt")
    with sqlite3.connect(ws.root / "shop.db") as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    sqlite_error = r"'shop.db' is a SQLite database, not text: query it with SQL"
    with pytest.raises(WorkspaceError, match=sqlite_error):
        ws.read_text("shop.db")


def test_list_errors_are_clear(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="no such folder"):
        ws.list_dir("nope")
    with pytest.raises(WorkspaceError, match="is a file"):
        ws.list_dir("readme.md")


def test_write_errors_are_clear(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="is a folder"):
        ws.write_text("notes", "x")
    with pytest.raises(WorkspaceError, match="is a folder"):
        ws.write_text(".", "x")
    with pytest.raises(WorkspaceError, match="parent is a file"):
        ws.write_text("readme.md/child.txt", "x")
    with pytest.raises(WorkspaceError, match="must be text"):
        ws.write_text("a.txt", b"bytes")  # type: ignore[arg-type]


def test_read_is_size_capped(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", max_read_bytes=100)
    (ws.root / "big.txt").write_text("x" * 1000, encoding="utf-8")
    text = ws.read_text("big.txt")
    assert text.startswith("x" * 100)
    assert "[truncated: showing the first 100 of 1000 bytes]" in text
    assert len(text) < 200


def test_cut_inside_a_multibyte_character_still_decodes(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", max_read_bytes=5)
    (ws.root / "u.txt").write_text("ééééé", encoding="utf-8")  # 10 bytes
    text = ws.read_text("u.txt")
    assert text.startswith("éé")
    assert "truncated" in text


def test_write_is_size_capped(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", max_write_bytes=10)
    with pytest.raises(WorkspaceError, match="write limit is 10"):
        ws.write_text("a.txt", "x" * 11)
    assert not (ws.root / "a.txt").exists()


def test_listing_is_capped(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", max_list_entries=3)
    for i in range(5):
        (ws.root / f"f{i}.txt").write_text("", encoding="utf-8")
    assert ws.list_dir() == ["f0.txt", "f1.txt", "f2.txt", "[... 2 more entries not shown]"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_file(ws: Workspace) -> None:
    path = ws.root / "locked.txt"
    path.write_text("x", encoding="utf-8")
    path.chmod(0)
    expected = re.escape("cannot read 'locked.txt': permission denied")
    try:
        with pytest.raises(WorkspaceError, match=expected):
            ws.read_text("locked.txt")
    finally:
        path.chmod(0o600)
