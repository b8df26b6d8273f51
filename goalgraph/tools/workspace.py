"""``Workspace``: file access confined to one folder.

Every user path is resolved (``..`` collapsed, symlinks followed) before use and must land inside
the workspace root, so ``../x``, ``/etc/passwd`` and a symlink pointing outside are all refused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["DEFAULT_MAX_LIST_ENTRIES", "DEFAULT_MAX_READ_BYTES", "Workspace", "WorkspaceError"]

DEFAULT_MAX_READ_BYTES = 256 * 1024
"""Most bytes ``read_text`` returns; longer files are cut with a note."""
DEFAULT_MAX_WRITE_BYTES = 1024 * 1024
"""Most bytes ``write_text`` accepts."""
DEFAULT_MAX_LIST_ENTRIES = 500
"""Most entries ``list_dir`` returns."""


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
            raise WorkspaceError(f"no such file: {shown}")
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
            raise WorkspaceError(f"no such folder: {shown}")
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
