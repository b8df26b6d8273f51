"""Workspace tools against another process that swaps files and folders for links to outside.

The attacker (``tests/servers/link_swapper.py``) can write to the workspace, as another MCP
server, a shared folder or a user's script can; it cannot write outside. Whatever it swaps in
while the tools run, nothing outside may be read, listed or written, and no open may block.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from goalgraph.tools import workspace_fs
from goalgraph.tools.workspace import Workspace, WorkspaceError

SWAPPER = Path(__file__).parents[1] / "servers" / "link_swapper.py"
SECRET = "TOP SECRET outside the workspace"
SWAP_SECONDS = 2.5

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with ``notes.txt`` and ``box/data.txt``, and an outside folder with a secret
    file and a ``box/`` of its own."""
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "box").mkdir(parents=True)
    (ws / "notes.txt").write_text("harmless notes", encoding="utf-8")
    (ws / "box" / "data.txt").write_text("harmless data", encoding="utf-8")
    (outside / "box").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (outside / "box" / "data.txt").write_text(SECRET, encoding="utf-8")
    (outside / "box" / "outside-only.txt").write_text(SECRET, encoding="utf-8")
    return ws, outside


def start_swapper(ws: Path, outside: Path, mode: str) -> subprocess.Popen[str]:
    """Start the attacker and wait until its decoys are in place."""
    process = subprocess.Popen(
        [sys.executable, str(SWAPPER), str(ws), str(outside), str(SWAP_SECONDS), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def finish_swapper(process: subprocess.Popen[str]) -> int:
    """Wait for the attacker to stop and return how many swaps it made."""
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return int(out.strip())


def outside_state(outside: Path) -> dict[str, str]:
    """Every file outside the workspace with its text."""
    return {
        str(path.relative_to(outside)): path.read_text(encoding="utf-8")
        for path in sorted(outside.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("opener", ["openat2", "walk"])
def test_link_swaps_never_lead_outside(
    places: tuple[Path, Path], opener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if opener == "walk":  # as on a kernel without openat2: every open walks name by name
        monkeypatch.setattr(workspace_fs, "_openat2_call", None)
    elif workspace_fs._openat2_call is None:
        pytest.skip("this kernel (or its seccomp filter) has no openat2")
    ws_path, outside = places
    ws = Workspace(ws_path)
    before = outside_state(outside)
    process = start_swapper(ws_path, outside, "links")
    leaked: list[str] = []
    served = refused = rounds = 0
    while process.poll() is None:
        rounds += 1
        for read in (
            lambda: ws.read_text("notes.txt"),
            lambda: ws.read_text("box/data.txt"),
            lambda: "\n".join(ws.list_dir("box")),
            lambda: "\n".join(ws.search("secret", "box")),
        ):
            try:
                text = read()
            except WorkspaceError:
                refused += 1
                continue
            served += 1
            if "SECRET" in text or "outside-only" in text:
                leaked.append(text)
        try:
            ws.write_text("box/new.txt", f"written in round {rounds}")
        except WorkspaceError:
            refused += 1
    swaps = finish_swapper(process)
    assert leaked == []
    assert outside_state(outside) == before  # nothing written, created or changed outside
    # The race really ran: the attacker swapped thousands of times while the tools both
    # served the workspace's own files and refused the links.
    assert swaps > 1000
    assert rounds > 200
    assert served > 100
    assert refused > 10


def test_fifo_swaps_never_block_a_read(places: tuple[Path, Path]) -> None:
    ws_path, outside = places
    ws = Workspace(ws_path)
    process = start_swapper(ws_path, outside, "fifo")
    progress = [time.monotonic()]
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                ws.read_text("notes.txt")
            except WorkspaceError as exc:
                errors.append(str(exc))
            progress.append(time.monotonic())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    stalled = False
    while process.poll() is None and not stalled:
        time.sleep(0.05)
        stalled = time.monotonic() - progress[-1] > 2.0
    stop.set()
    swaps = finish_swapper(process)
    thread.join(timeout=2.0)
    stalled = stalled or thread.is_alive()
    if stalled:
        for name in ("notes.txt", ".decoy-notes"):  # let a reader blocked in open() go
            with contextlib.suppress(OSError):
                os.close(os.open(ws_path / name, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5.0)
    assert not stalled, "a read blocked on the FIFO swapped in for notes.txt"
    assert swaps > 1000
    assert len(progress) > 200
    assert any("FIFO" in error for error in errors)


def test_hard_link_to_an_outside_file_is_not_read(places: tuple[Path, Path]) -> None:
    ws_path, outside = places
    ws = Workspace(ws_path)
    os.link(outside / "secret.txt", ws_path / "linked.txt")
    with pytest.raises(WorkspaceError, match=r"'linked\.txt' has 2 hard links") as caught:
        ws.read_text("linked.txt")
    assert "SECRET" not in str(caught.value)
    assert ws.search("secret") == []  # search skips it too
    # A write replaces the workspace's name; the outside file keeps its text.
    ws.write_text("linked.txt", "mine")
    assert ws.read_text("linked.txt") == "mine"
    assert (outside / "secret.txt").read_text(encoding="utf-8") == SECRET


def test_fifo_is_refused_at_once(places: tuple[Path, Path]) -> None:
    ws_path, _ = places
    ws = Workspace(ws_path)
    os.mkfifo(ws_path / "pipe")
    started = time.monotonic()
    with pytest.raises(WorkspaceError, match=r"'pipe' is not a regular file \(a FIFO\)"):
        ws.read_text("pipe")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        ws.list_dir("pipe")
    assert ws.search("anything", "pipe") == []
    assert time.monotonic() - started < 2.0
