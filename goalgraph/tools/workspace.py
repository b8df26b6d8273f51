"""``Workspace``: file access confined to one folder.

A path is read by ``goalgraph.tools.workspace_paths`` (the safety policy's reading too), so
``../x`` and ``/etc/passwd`` are refused before anything is touched. Files are then opened through
descriptors (``goalgraph.tools.workspace_fs``): no name inside the workspace is followed by the
kernel, so a symbolic link pointing outside is refused even when another process swaps it in
while a tool runs. Reads take only regular files with one link (a hard link may be a file from
outside) and never block on a FIFO; writes create a temporary file in the opened folder and rename
it into place.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import posixpath
import stat
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO, Literal

from goalgraph.tools.workspace_fs import READ_FLAGS, Beneath, EscapeError, Opened, replace_file
from goalgraph.tools.workspace_paths import PathRefused, WorkspacePath, normalise_path

__all__ = [
    "DEFAULT_MAX_LIST_ENTRIES",
    "DEFAULT_MAX_READ_BYTES",
    "DEFAULT_MAX_SEARCH_RESULTS",
    "MAX_SUGGESTIONS",
    "SQLITE_HEADER",
    "PathKind",
    "Workspace",
    "WorkspaceError",
]

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first bytes of every SQLite database file."""

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
        # An absolute path may also name the root as it was given (through a link above it).
        self._roots = tuple(dict.fromkeys([str(self.root), os.path.normpath(path.absolute())]))
        self._files = Beneath(self.root, self._roots)
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        self.max_list_entries = max_list_entries

    def __repr__(self) -> str:
        """Return ``Workspace('<root>')``."""
        return f"Workspace({str(self.root)!r})"

    def resolve(self, path: str | os.PathLike[str] = ".") -> Path:
        """Return the absolute location of ``path``, refusing anything outside the workspace.

        This names the place (for messages and suggestions); the file operations do not rely
        on it, since a link can change after it looked: they open through descriptors.

        Args:
            path: Relative to the root, or absolute inside it. ``""`` and ``"."`` mean the root.

        Returns:
            The resolved path (symlinks followed); it may not exist yet.

        Raises:
            WorkspaceError: If the path escapes the workspace or is malformed.
        """
        where = self._where(path)
        # Path.resolve follows every existing symlink, so a link that points outside ends up
        # outside root and is refused here.
        try:
            resolved = self.root.joinpath(*where.parts).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise WorkspaceError(f"cannot resolve path {_shown(path)}: {_reason(exc)}") from None
        if not resolved.is_relative_to(self.root):
            raise WorkspaceError(f"path {_shown(path)} leads outside the workspace")
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
            WorkspaceError: If the file is missing, a folder, not a regular file (a FIFO, a
                device), hard-linked, binary or unreadable.
        """
        shown = _shown(path)
        with self.open_file(path) as opened:
            size = os.fstat(opened.fd).st_size
            try:
                data = _read_head(opened.fd, self.max_read_bytes)
            except OSError as exc:
                raise WorkspaceError(f"cannot read {shown}: {_reason(exc)}") from None
        text = _decode(data, cut=size > len(data))
        if text is None:
            if data.startswith(SQLITE_HEADER):  # Saying what it is tells the model what reads it.
                raise WorkspaceError(f"{shown} is a SQLite database, not text: query it with SQL")
            raise WorkspaceError(f"{shown} is not a UTF-8 text file")
        if size > len(data):
            text += f"\n[truncated: showing the first {len(data)} of {size} bytes]"
        return text

    def open_file(self, path: str | os.PathLike[str]) -> Opened:
        """Open a workspace file for reading through descriptors, as ``read_text`` does.

        Only a regular file with one link is given: never a folder, a FIFO or a device (the
        open does not block), nor a hard link, which may be a file from outside. No symbolic
        link leads outside, even one swapped in meanwhile.

        Args:
            path: A file inside the workspace.

        Returns:
            The open file (``fd``, and ``parts``: where it is, links resolved); close it, or
            use it as a ``with`` block.

        Raises:
            WorkspaceError: If the file is missing, a folder, not a regular file, hard-linked,
                outside or cannot be opened.
        """
        where = self._where(path)
        shown = _shown(path)
        try:
            opened = self._files.open(where.parts)
        except (FileNotFoundError, NotADirectoryError):
            raise WorkspaceError(
                f"no such file: {shown}{self.nearby(self._target(where), 'file')}"
            ) from None
        except EscapeError:
            raise WorkspaceError(f"path {shown} leads outside the workspace") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot read {shown}: {_reason(exc)}") from None
        info = os.fstat(opened.fd)
        problem = None
        if stat.S_ISDIR(info.st_mode):
            listing = self._holdings("/".join(where.parts), as_paths=True)
            problem = f"{shown} is a folder, not a file; {listing}"
        elif not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            problem = f"{shown} is not a regular file ({kind}); only regular files are read"
        elif info.st_nlink > 1:
            problem = (
                f"{shown} has {info.st_nlink} hard links, and a hard link can be a file from "
                "outside the workspace, so it is not read; copy it to a new file first"
            )
        if problem is not None:
            opened.close()
            raise WorkspaceError(problem)
        return opened

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
        where = self._where(path)
        shown = _shown(path)
        try:
            with self._files.open(where.parts) as opened:
                if not stat.S_ISDIR(os.fstat(opened.fd).st_mode):
                    raise WorkspaceError(f"{shown} is a file, not a folder; read it instead")
                with os.scandir(opened.fd) as found:
                    entries = sorted(found, key=lambda entry: entry.name)
                    # Entries of a descriptor's listing stat through it: ask while it is open.
                    names = [entry.name + ("/" if _is_dir(entry) else "") for entry in entries]
        except (FileNotFoundError, NotADirectoryError):
            raise WorkspaceError(
                f"no such folder: {shown}{self.nearby(self._target(where), 'folder')}"
            ) from None
        except EscapeError:
            raise WorkspaceError(f"path {shown} leads outside the workspace") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot list {shown}: {_reason(exc)}") from None
        if len(names) > self.max_list_entries:
            extra = len(names) - self.max_list_entries
            names = [*names[: self.max_list_entries], f"[... {extra} more entries not shown]"]
        return names

    def write_text(self, path: str | os.PathLike[str], content: str) -> int:
        """Write ``content`` to a file (replacing it), creating parent folders as needed.

        The file is written to a temporary sibling and renamed into place, so a failed write
        never leaves a half-written file; the rename replaces a symbolic link swapped in for
        the file rather than writing where it points.

        Args:
            path: A file inside the workspace.
            content: The complete new text.

        Returns:
            The number of bytes written.

        Raises:
            WorkspaceError: If the path is a folder or outside, the text too large, or the write
                fails.
        """
        where = self._where(path)
        shown = _shown(path)
        if not isinstance(content, str):
            raise WorkspaceError(f"content must be text, not {type(content).__name__}")
        data = content.encode("utf-8")
        if len(data) > self.max_write_bytes:
            raise WorkspaceError(
                f"content is {len(data)} bytes; the write limit is {self.max_write_bytes}"
            )
        folder_error = f"{shown} is a folder; give a file path such as notes.txt"
        if not where.parts:
            raise WorkspaceError(folder_error)
        try:
            with self._files.parent(where.parts, create=True) as (folder, name):
                if name is None or _is_folder(folder.fd, name):
                    raise WorkspaceError(folder_error)
                replace_file(folder.fd, name, data)
        except (FileExistsError, NotADirectoryError):
            raise WorkspaceError(
                f"cannot write {shown}: a parent is a file, not a folder"
            ) from None
        except IsADirectoryError:
            raise WorkspaceError(folder_error) from None
        except EscapeError:
            raise WorkspaceError(f"path {shown} leads outside the workspace") from None
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
        byte), files over ``MAX_SEARCH_FILE_BYTES``, files with more than one hard link and the
        folders in ``SEARCH_SKIPPED_FOLDERS`` are skipped. Below ``path``, symbolic links are
        never followed: the folder walk and every file open refuse them, so no link can lead
        the search outside.

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
        where = self._where(path)
        needle = query.casefold()
        matches: list[str] = []
        files = too_large = 0
        try:
            with (
                self._files.open(where.parts) as top,
                contextlib.closing(_search_files(top)) as found,
            ):
                for shown, handle in found:
                    files += 1
                    if files > MAX_SEARCH_FILES or len(matches) > max_results:
                        break
                    if os.fstat(handle.fileno()).st_size > MAX_SEARCH_FILE_BYTES:
                        too_large += 1
                        continue
                    matches += _matching_lines(shown, handle.read(), needle)
        except (FileNotFoundError, NotADirectoryError):
            nearby = self.nearby(self._target(where), "any")
            raise WorkspaceError(f"no such file or folder: {_shown(path)}{nearby}") from None
        except EscapeError:
            raise WorkspaceError(f"path {_shown(path)} leads outside the workspace") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot search {_shown(path)}: {_reason(exc)}") from None
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
        return f"; {self._holdings(folder, where)}"

    def _holdings(self, folder: str, subject: str = "it", *, as_paths: bool = False) -> str:
        """Return what ``folder`` (relative) holds: "{subject} holds 'a.txt', 'old/'", "...
        and 3 more" or "{subject} is empty"; with ``as_paths``, each entry as a path a call can
        copy ("'inbox/a.txt'")."""
        names, more = _children(self._scan(folder, MAX_SUGGESTION_SCAN), MAX_SHOWN_ENTRIES)
        if not names:
            return f"{subject} is empty"
        prefix = f"{folder}/" if folder and as_paths else ""
        listed = ", ".join(repr(prefix + name) for name in names)
        return f"{subject} holds {listed}" + (f" and {more} more" if more else "")

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
            for name, is_dir in self._scan(folder, room):
                if name.startswith(".") and not hidden:
                    continue
                relative = f"{folder}/{name}" if folder else name
                found.append((relative, is_dir))
                if is_dir and name not in SEARCH_SKIPPED_FOLDERS:
                    folders.append(relative)
        return found

    def _scan(self, folder: str, most: int) -> list[tuple[str, bool]]:
        """Return up to ``most`` ``(name, is a folder)`` entries of ``folder`` (relative),
        sorted by name.

        The folder is opened without following any symbolic link, and links inside it count as
        files; a missing or unreadable folder has no entries.
        """
        parts = tuple(name for name in folder.split("/") if name)
        entries: list[tuple[str, bool]] = []
        try:
            with (
                self._files.open(parts, READ_FLAGS | os.O_DIRECTORY, follow=False) as opened,
                os.scandir(opened.fd) as found,
            ):
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

    def _where(self, path: str | os.PathLike[str]) -> WorkspacePath:
        """Read ``path`` as the safety policy does (``normalise_path``), absolute inside too."""
        try:
            return normalise_path(path, roots=self._roots)
        except PathRefused as exc:
            raise WorkspaceError(str(exc)) from None

    def _target(self, where: WorkspacePath) -> Path:
        """Return where a missing ``where`` would be, for suggestions: symbolic links resolved
        when they stay inside, else the path as named."""
        named = self.root.joinpath(*where.parts)
        with contextlib.suppress(OSError, RuntimeError):
            resolved = named.resolve()
            if resolved.is_relative_to(self.root):
                return resolved
        return named


def _search_files(top: Opened) -> Generator[tuple[str, BinaryIO], None, None]:
    """Yield ``(path shown, open file)`` for every regular file under the open ``top``, in
    order, never following a symbolic link."""
    base = "/".join(top.parts)
    info = os.fstat(top.fd)
    if not stat.S_ISDIR(info.st_mode):
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            with os.fdopen(os.dup(top.fd), "rb") as single:
                yield base, single
        return
    for folder, subfolders, names, folder_fd in os.fwalk(".", dir_fd=top.fd, follow_symlinks=False):
        subfolders[:] = sorted(set(subfolders) - SEARCH_SKIPPED_FOLDERS)
        for name in sorted(names):
            handle = _open_regular(name, folder_fd)
            if handle is None:
                continue
            with handle:
                yield posixpath.normpath(posixpath.join(base, folder, name)), handle


def _children(scanned: list[tuple[str, bool]], most: int) -> tuple[list[str], str]:
    """Return up to ``most`` names of a folder's ``scanned`` entries (folders with ``/``), files
    first, and how many more there are (``""``: none; ``"many"`` past ``MAX_SUGGESTION_SCAN``).
    Hidden entries (names starting with ``.``) are left out."""
    entries = [entry for entry in scanned if not entry[0].startswith(".")]
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


def _open_regular(name: str, folder_fd: int) -> BinaryIO | None:
    """Open a regular file with one link for reading without following a symlink; ``None`` for
    anything else (a hard link can be a file from outside the workspace).

    O_NOFOLLOW plus a folder descriptor from ``os.fwalk`` leave no window in which a link
    swapped in could redirect the read; O_NONBLOCK keeps a FIFO from hanging the search.
    """
    try:
        fd = os.open(name, READ_FLAGS | os.O_NOFOLLOW, dir_fd=folder_fd)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
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


def _read_head(fd: int, most: int) -> bytes:
    """Return up to ``most`` bytes from the start of the open file."""
    chunks: list[bytes] = []
    while most > 0:
        chunk = os.read(fd, most)
        if not chunk:
            break
        chunks.append(chunk)
        most -= len(chunk)
    return b"".join(chunks)


def _is_folder(folder: int, name: str) -> bool:
    """Whether ``name`` in the open ``folder`` is a folder itself (not a link to one)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _kind(mode: int) -> str:
    """Name a file type that is neither a regular file nor a folder."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


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
