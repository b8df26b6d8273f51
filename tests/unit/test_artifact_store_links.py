"""The artifact store writes into the workspace, which other processes may write too: a link
planted for one of its folders or files must not move goalgraph's own writes outside."""

from __future__ import annotations

from pathlib import Path

from goalgraph.tools.content import ArtifactStore, content_to_text

LONG = "".join(f"line {i}\n" for i in range(500))


def store_in(ws: Path) -> ArtifactStore:
    """The store as the agent builds it: ``.goalgraph/artifacts`` below the workspace."""
    return ArtifactStore(ws / ".goalgraph" / "artifacts", shown_as=".goalgraph/artifacts", root=ws)


def test_a_linked_store_folder_is_not_written_through(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    (ws / ".goalgraph").symlink_to(outside, target_is_directory=True)
    shown = content_to_text(LONG, max_chars=100, artifacts=store_in(ws))
    assert list(outside.iterdir()) == []
    assert shown.splitlines()[-1].endswith(
        "in all; it could not be saved: "
        ".goalgraph/artifacts leads outside the workspace through a symbolic link]"
    )


def test_planted_links_in_the_store_are_never_written_through(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    folder = ws / ".goalgraph" / "artifacts"
    folder.mkdir(parents=True)
    outside.mkdir()
    victim = outside / "bashrc"
    victim.write_text("the user's own file", encoding="utf-8")
    # The names are predictable (a hash of the content): plant a link where the temporary
    # file used to go, then one where the file itself goes.
    name = ArtifactStore(tmp_path / "probe").save(LONG.encode(), ".txt")
    name = name.rsplit("/", 1)[1]
    (folder / f".{name}.partial").symlink_to(victim)
    shown = content_to_text(LONG, max_chars=100, artifacts=store_in(ws))
    assert shown.endswith(f"the whole output is in .goalgraph/artifacts/{name}]")
    assert (folder / name).read_text(encoding="utf-8") == LONG
    assert victim.read_text(encoding="utf-8") == "the user's own file"

    other = LONG + "more\n"
    other_name = ArtifactStore(tmp_path / "probe").save(other.encode(), ".txt")
    (folder / other_name.rsplit("/", 1)[1]).symlink_to(victim)
    shown = content_to_text(other, max_chars=100, artifacts=store_in(ws))
    assert "it could not be saved" in shown.splitlines()[-1]
    assert victim.read_text(encoding="utf-8") == "the user's own file"


def test_a_store_without_a_root_still_works(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a" / "b", shown_as="b")
    assert store.save(b"hello", ".txt") == "b/2cf24dba5fb0a30e.txt"
    assert (tmp_path / "a" / "b" / "2cf24dba5fb0a30e.txt").read_bytes() == b"hello"
