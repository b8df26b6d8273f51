"""``Workspace``: file access confined to one folder.

Every user path is resolved (``..`` collapsed, symlinks followed) before use and must land inside
the workspace root, so ``../x``, ``/etc/passwd`` and a symlink pointing outside are all refused.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import stat
import tempfile
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = [
    "DEFAULT_MAX_LIST_ENTRIES",
    "DEFAULT_MAX_READ_BYTES",
    "DEFAULT_MAX_SEARCH_RESULTS",
    "MAX_SUGGESTIONS",
    "PathKind",
    "Workspace",
    "WorkspaceError",
]

DEFAULT_MAX_READ_BYTES = 256 * 1024
"""Most bytes ``read_text`` returns; longer files are cut with a note."""
DEFAULT_MAX_WRITE_BYTES = 1024 * 1024
"""Most bytes ``write_text`` accepts."""
DEFAULT_MAX_LIST_ENTRIES = 500
"""Most entries ``list_dir`` returns."""
DEFAULT_MAX_SEARCH_RESULTS = 50
"""Most matching lines ``search`` returns."""
MAX_SEARCH_FILE_BYTES = 1024 * 1024
"""Files larger than this are skipped by ``search`` (and counted in a note)."""
MAX_SEARCH_FILES = 5000
"""Most files one ``search`` reads."""
MAX_SEARCH_LINE_CHARS = 200
"""Longest line text ``search`` shows; longer lines are cut around the match."""
SEARCH_SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv"})
"""Folders ``search`` does not descend into (unless the search starts inside one)."""
MAX_SUGGESTIONS = 3
"""Most existing paths a "no such file" message names."""
MAX_SUGGESTION_SCAN = 2000
"""Most workspace entries looked at to find them (the shallowest first), so a huge workspace
costs a missing-file error a bounded amount of work."""
SUGGESTION_CUTOFF = 0.6
"""Lowest similarity (difflib's ratio, of the whole path or of the file name) of a suggestion."""
MAX_SHOWN_ENTRIES = 5
"""Most entries of a folder a "no such file" message shows when nothing is similar."""

PathKind = Literal["file", "folder", "any"]
"""What a missing path should have been, which decides what is suggested instead."""


class WorkspaceError(ValueError):
    """A workspace operation that was refused or failed; the message says why."""


class Workspace:
    """A folder that file tools are confined to.

    Example:
        >>> ws = Workspace("/tmp/demo-workspace")
        >>> ws.write_text("notes/a.txt", "hi")
        2
        >>> ws.read_text("notes/a.txt")
        'hi'
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        create: bool = True,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        max_write_bytes: int = DEFAULT_MAX_WRITE_BYTES,
        max_list_entries: int = DEFAULT_MAX_LIST_ENTRIES,
    ) -> None:
        """Open the workspace at ``root``.

        Args:
            root: The workspace folder.
            create: Create ``root`` (and its parents) when it does not exist.
            max_read_bytes: Most bytes one read returns.
            max_write_bytes: Most bytes one write accepts.
            max_list_entries: Most entries one listing returns.

        Raises:
            WorkspaceError: If ``root`` is missing (and ``create`` is off) or not a folder.
        """
        path = Path(root).expanduser()
        if create:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkspaceError(f"cannot create workspace {path}: {_reason(exc)}") from None
        if not path.is_dir():
            raise WorkspaceError(f"workspace {path} is not an existing folder")
        self.root = path.resolve()
        """The absolute, symlink-free workspace folder."""
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        self.max_list_entries = max_list_entries

    def __repr__(self) -> str:
        """Return ``Workspace('<root>')``."""
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str | os.PathLike[str] = ".") -> Path:
        """Return the absolute location of ``path``, refusing anything outside the workspace.

        Args:
            path: Relative to the root, or absolute inside it. ``""`` and ``"."`` mean the root.

        Returns:
            The resolved path (symlinks followed); it may not exist yet.

        Raises:
            WorkspaceError: If the path escapes the workspace or is malformed.
        """
        text = os.fspath(path)
        if "\x00" in text:
            raise WorkspaceError("path contains a NUL byte")
        text = text.strip() or "."
        candidate = Path(text)
        # Path.resolve follows every existing symlink and collapses "..", so a link that points
        # outside or a "../" that climbs out both end up outside root and are refused here.
        try:
            resolved = (self.root / candidate).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise WorkspaceError(f"cannot resolve path {text!r}: {_reason(exc)}") from None
        if not resolved.is_relative_to(self.root):
            if candidate.is_absolute() and not Path(os.path.normpath(text)).is_relative_to(
                self.root
            ):
                raise WorkspaceError(
                    f"path {text!r} is outside the workspace; use a path relative to it"
                )
            raise WorkspaceError(f"path {text!r} leads outside the workspace")
        return resolved

    def relative(self, path: str | os.PathLike[str]) -> str:
        """Return ``path`` relative to the root, as shown to users (``.`` for the root)."""
        rel = self.resolve(path).relative_to(self.root).as_posix()
        return rel or "."

    def read_text(self, path: str | os.PathLike[str]) -> str:
        """Return the text of a UTF-8 file, cut at ``max_read_bytes`` with a note.

        Args:
            path: A file inside the workspace.

        Returns:
            The file's text; a cut file ends with ``[truncated: ...]``.

        Raises:
            WorkspaceError: If the file is missing, a folder, binary or unreadable.
        """
        target = self.resolve(path)
        shown = _shown(path)
        if target.is_dir():
            raise WorkspaceError(f"{shown} is a folder, not a file; list it instead")
        if not target.is_file():
            if target.exists():
                raise WorkspaceError(f"{shown} is not a regular file")
            raise WorkspaceError(f"no such file: {shown}{self.nearby(target, 'file')}")
        try:
            size = target.stat().st_size
            with target.open("rb") as handle:
                data = handle.read(self.max_read_bytes)
        except OSError as exc:
            raise WorkspaceError(f"cannot read {shown}: {_reason(exc)}") from None
        text = _decode(data, cut=size > len(data))
        if text is None:
            raise WorkspaceError(f"{shown} is not a UTF-8 text file")
        if size > len(data):
            text += f"\n[truncated: showing the first {len(data)} of {size} bytes]"
        return text

    def list_dir(self, path: str | os.PathLike[str] = ".") -> list[str]:
        """List a folder: sorted names, folders marked with a trailing ``/``.

        Args:
            path: A folder inside the workspace; ``"."`` is the root.

        Returns:
            Entry names (not paths), at most ``max_list_entries`` of them; when more exist the
            last item says how many were left out.

        Raises:
            WorkspaceError: If the folder is missing, a file or unreadable.
        """
        target = self.resolve(path)
        shown = _shown(path)
        if not target.exists():
            raise WorkspaceError(f"no such folder: {shown}{self.nearby(target, 'folder')}")
        if not target.is_dir():
            raise WorkspaceError(f"{shown} is a file, not a folder; read it instead")
        try:
            entries = sorted(os.scandir(target), key=lambda entry: entry.name)
        except OSError as exc:
            raise WorkspaceError(f"cannot list {shown}: {_reason(exc)}") from None
        names = [entry.name + ("/" if _is_dir(entry) else "") for entry in entries]
        if len(names) > self.max_list_entries:
            extra = len(names) - self.max_list_entries
            names = [*names[: self.max_list_entries], f"[... {extra} more entries not shown]"]
        return names

    def write_text(self, path: str | os.PathLike[str], content: str) -> int:
        """Write ``content`` to a file (replacing it), creating parent folders as needed.

        The file is written to a temporary sibling and renamed into place, so a failed write
        never leaves a half-written file.

        Args:
            path: A file inside the workspace.
            content: The complete new text.

        Returns:
            The number of bytes written.

        Raises:
            WorkspaceError: If the path is a folder or outside, the text too large, or the write
                fails.
        """
        target = self.resolve(path)
        shown = _shown(path)
        if not isinstance(content, str):
            raise WorkspaceError(f"content must be text, not {type(content).__name__}")
        data = content.encode("utf-8")
        if len(data) > self.max_write_bytes:
            raise WorkspaceError(
                f"content is {len(data)} bytes; the write limit is {self.max_write_bytes}"
            )
        if target == self.root or target.is_dir():
            raise WorkspaceError(f"{shown} is a folder; give a file path such as notes.txt")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except FileExistsError:
            raise WorkspaceError(
                f"cannot write {shown}: a parent is a file, not a folder"
            ) from None
        except NotADirectoryError:
            raise WorkspaceError(
                f"cannot write {shown}: a parent is a file, not a folder"
            ) from None
        except OSError as exc:
            raise WorkspaceError(f"cannot write {shown}: {_reason(exc)}") from None
        return len(data)

    def search(
        self,
        query: str,
        path: str | os.PathLike[str] = ".",
        *,
        max_results: int = DEFAULT_MAX_SEARCH_RESULTS,
    ) -> list[str]:
        """Find the lines of text files that contain ``query``, ignoring case.

        ``query`` is plain text, not a regular expression: models rarely escape regex syntax, and
        a substring test cannot blow up on a pathological pattern. Binary files (with a NUL
        byte), files over ``MAX_SEARCH_FILE_BYTES`` and the folders in
        ``SEARCH_SKIPPED_FOLDERS`` are skipped. Symbolic links are never followed: the folder
        walk and every file open refuse them, so no link can lead the search outside.

        Args:
            query: The text to look for.
            path: A folder (searched recursively) or a file inside the workspace.
            max_results: Most matching lines returned.

        Returns:
            ``file:line: text`` entries (paths relative to the root) in path order; notes in
            brackets follow when the results were capped or large files were skipped. Empty
            when nothing matched.

        Raises:
            WorkspaceError: If the query is empty, the path is outside the workspace or missing.
        """
        if not query.strip():
            raise WorkspaceError("the search text is empty")
        if max_results < 1:
            raise WorkspaceError("max_results must be at least 1")
        top = self.resolve(path)
        if not top.exists():
            raise WorkspaceError(f"no such file or folder: {_shown(path)}{self.nearby(top, 'any')}")
        needle = query.casefold()
        matches: list[str] = []
        files = too_large = 0
        with contextlib.closing(self._search_files(top)) as found:
            for shown, handle in found:
                files += 1
                if files > MAX_SEARCH_FILES or len(matches) > max_results:
                    break
                if os.fstat(handle.fileno()).st_size > MAX_SEARCH_FILE_BYTES:
                    too_large += 1
                    continue
                matches += _matching_lines(shown, handle.read(), needle)
        return [*matches[:max_results], *_search_notes(matches, max_results, files, too_large)]

    def nearest_paths(
        self, path: str | os.PathLike[str], kind: PathKind = "any", *, limit: int = MAX_SUGGESTIONS
    ) -> list[str]:
        """Return the existing workspace paths most like ``path``, most similar first.

        Similarity is difflib's ratio of the whole relative path or of the last part, whichever
        is higher, ignoring case, so "notes.txt" finds "docs/notes.txt" and "Notes.md". Only the
        first ``MAX_SUGGESTION_SCAN`` entries, shallowest first, are looked at; symbolic links are
        never followed and the folders of ``SEARCH_SKIPPED_FOLDERS`` are not entered.

        Args:
            path: The path that was not found (relative to the root, or absolute inside it).
            kind: Suggest files, folders (shown with a trailing ``/``) or either.
            limit: Most paths returned.

        Returns:
            Relative paths scoring at least ``SUGGESTION_CUTOFF``; empty when none does.

        Raises:
            WorkspaceError: If ``path`` is outside the workspace or malformed.
        """
        wanted = self.resolve(path).relative_to(self.root).as_posix().casefold()
        hidden = any(part.startswith(".") for part in wanted.split("/"))
        found = self._entries(hidden=hidden, first=self._existing_folder(self.resolve(path)))
        scored = []
        for relative, is_dir in dict.fromkeys(found):
            if (kind == "file" and is_dir) or (kind == "folder" and not is_dir):
                continue
            score = _similarity(wanted, relative.casefold())
            if score >= SUGGESTION_CUTOFF:
                scored.append((-score, relative.count("/"), relative, is_dir))
        scored.sort()
        return [relative + ("/" if is_dir else "") for _, _, relative, is_dir in scored[:limit]]

    def nearby(self, target: Path, kind: PathKind) -> str:
        """Return what to add to a "no such ..." message about ``target``: the nearest paths.

        When none is similar, it shows what the nearest existing folder above ``target`` holds,
        so the next attempt can copy a real name.

        Args:
            target: The resolved, missing path (inside the workspace).
            kind: What was wanted: a file, a folder, or either.

        Returns:
            ``"; did you mean 'a' or 'b'?"``, ``"; the workspace holds 'x', 'y/'"`` or similar,
            starting with ``"; "``.
        """
        similar = self.nearest_paths(target, kind)
        if similar:
            return f"; did you mean {_either(similar)}?"
        folder = self._existing_folder(target)
        where = _shown(folder + "/") if folder else "the workspace"
        names, more = _children(self.root / folder, MAX_SHOWN_ENTRIES)
        if not names:
            return f"; {where} is empty"
        listed = ", ".join(repr(name) for name in names)
        return f"; {where} holds {listed}" + (f" and {more} more" if more else "")

    def _existing_folder(self, target: Path) -> str:
        """Return the nearest existing folder above ``target``, relative (``""``: the root)."""
        folder = target.parent
        while folder != self.root and not folder.is_dir():
            folder = folder.parent
        return folder.relative_to(self.root).as_posix() if folder != self.root else ""

    def _entries(self, *, hidden: bool, first: str = "") -> list[tuple[str, bool]]:
        """Return ``(relative path, is a folder)`` for up to ``MAX_SUGGESTION_SCAN`` entries,
        the folder ``first`` (relative) and then the workspace breadth first, without following
        symbolic links; names starting with ``.`` (such as goalgraph's own ``.goalgraph/``
        folder) only when ``hidden``."""
        found: list[tuple[str, bool]] = []
        folders: deque[str] = deque(dict.fromkeys([first, ""]))
        seen: set[str] = set()
        while folders and len(found) < MAX_SUGGESTION_SCAN:
            folder = folders.popleft()
            if folder in seen:
                continue
            seen.add(folder)
            room = MAX_SUGGESTION_SCAN - len(found)
            for name, is_dir in _scan(self.root / folder, room):
                if name.startswith(".") and not hidden:
                    continue
                relative = f"{folder}/{name}" if folder else name
                found.append((relative, is_dir))
                if is_dir and name not in SEARCH_SKIPPED_FOLDERS:
                    folders.append(relative)
        return found

    def _search_files(self, top: Path) -> Generator[tuple[str, BinaryIO], None, None]:
        """Yield ``(path shown, open file)`` for every regular file under ``top``, in order."""
        if not top.is_dir():
            handle = _open_regular(str(top), None)
            if handle is not None:
                with handle:
                    yield top.relative_to(self.root).as_posix(), handle
            return
        for folder, subfolders, names, folder_fd in os.fwalk(top, follow_symlinks=False):
            subfolders[:] = sorted(set(subfolders) - SEARCH_SKIPPED_FOLDERS)
            for name in sorted(names):
                handle = _open_regular(name, folder_fd)
                if handle is None:
                    continue
                with handle:
                    yield Path(folder, name).relative_to(self.root).as_posix(), handle


def _scan(folder: Path, most: int) -> list[tuple[str, bool]]:
    """Return up to ``most`` ``(name, is a folder)`` entries of ``folder``, sorted by name.

    Symbolic links count as files (never followed); an unreadable folder has no entries.
    """
    entries: list[tuple[str, bool]] = []
    try:
        with os.scandir(folder) as found:
            for entry in found:
                if len(entries) >= most:
                    break
                try:
                    entries.append((entry.name, entry.is_dir(follow_symlinks=False)))
                except OSError:
                    continue
    except OSError:
        return []
    return sorted(entries)


def _children(folder: Path, most: int) -> tuple[list[str], str]:
    """Return up to ``most`` entry names of ``folder`` (folders with ``/``), files first, and
    how many more there are (``""``: none; ``"many"`` past ``MAX_SUGGESTION_SCAN``). Hidden
    entries (names starting with ``.``) are left out."""
    entries = [
        entry for entry in _scan(folder, MAX_SUGGESTION_SCAN) if not entry[0].startswith(".")
    ]
    ordered = sorted(entries, key=lambda entry: (entry[1], entry[0]))
    names = [name + ("/" if is_dir else "") for name, is_dir in ordered[:most]]
    if len(entries) >= MAX_SUGGESTION_SCAN:
        return names, "many"
    return names, str(len(entries) - most) if len(entries) > most else ""


def _similarity(wanted: str, candidate: str) -> float:
    """The higher of the whole paths' and the last parts' difflib ratios; 0 below the cutoff."""
    best = 0.0
    for left, right in (
        (wanted, candidate),
        (wanted.rsplit("/", 1)[-1], candidate.rsplit("/", 1)[-1]),
    ):
        floor = max(best, SUGGESTION_CUTOFF)
        matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
        # The quick upper bounds skip most candidates without the full comparison.
        if matcher.real_quick_ratio() >= floor and matcher.quick_ratio() >= floor:
            best = max(best, matcher.ratio())
    return best


def _either(paths: list[str]) -> str:
    quoted = [repr(path) for path in paths]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _open_regular(name: str, folder_fd: int | None) -> BinaryIO | None:
    """Open a regular file for reading without following a symlink; ``None`` for anything else.

    O_NOFOLLOW plus a folder descriptor from ``os.fwalk`` leave no window in which a link
    swapped in could redirect the read; O_NONBLOCK keeps a FIFO from hanging the search.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags, dir_fd=folder_fd)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _matching_lines(shown: str, data: bytes, needle: str) -> list[str]:
    if b"\x00" in data:
        return []  # binary
    found = []
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=1):
        at = line.casefold().find(needle)
        if at >= 0:
            found.append(f"{shown}:{number}: {_clip_line(line.strip(), at)}")
    return found


def _clip_line(line: str, at: int) -> str:
    if len(line) <= MAX_SEARCH_LINE_CHARS:
        return line
    start = max(0, min(at - MAX_SEARCH_LINE_CHARS // 3, len(line) - MAX_SEARCH_LINE_CHARS))
    clipped = line[start : start + MAX_SEARCH_LINE_CHARS]
    return ("..." if start else "") + clipped + ("..." if start + len(clipped) < len(line) else "")


def _search_notes(matches: list[str], max_results: int, files: int, too_large: int) -> list[str]:
    notes = []
    if len(matches) > max_results:
        notes.append(f"[stopped at {max_results} matches; search a narrower text or folder]")
    if files > MAX_SEARCH_FILES:
        notes.append(f"[stopped after {MAX_SEARCH_FILES} files; search a smaller folder]")
    if too_large:
        files_word = "file" if too_large == 1 else "files"
        notes.append(f"[skipped {too_large} {files_word} over {MAX_SEARCH_FILE_BYTES} bytes]")
    return notes


def _decode(data: bytes, *, cut: bool) -> str | None:
    if b"\x00" in data:
        return None
    # A cut can split a multi-byte character; drop up to three trailing bytes before giving up.
    for trim in range(4 if cut else 1):
        try:
            return data[: len(data) - trim].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _shown(path: str | os.PathLike[str]) -> str:
    return repr(os.fspath(path).strip() or ".")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
