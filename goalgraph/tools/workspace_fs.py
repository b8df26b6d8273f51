"""Open workspace paths through folder descriptors, so no swapped-in link can lead outside.

Checking a path and then opening it by name leaves a window in which another process that can
write to the workspace replaces a file or folder with a symbolic link to somewhere else. Here no
path inside the workspace is ever followed by name:

* ``openat2`` with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`` (Linux 5.6
  and later) opens a path without symbolic links in one step, relative to a descriptor of the
  workspace root, and the kernel refuses anything that would leave it;
* otherwise, and whenever the path holds a symbolic link, the path is walked one name at a time,
  each folder opened with ``O_NOFOLLOW`` relative to the descriptor of the folder before it. A
  link is read (``readlinkat``) and its target walked the same way: a relative target from the
  link's folder (a ``..`` above the root is refused), an absolute one only when it names a place
  inside the workspace.

Writes go through the descriptor of the file's folder: a temporary file is created in it and
renamed over the file's name, and a rename replaces a link rather than following it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import posixpath
import secrets
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["MAX_LINKS", "READ_FLAGS", "Beneath", "EscapeError", "Opened", "replace_file"]

MAX_LINKS = 40
"""Most symbolic links (and re-created folders) one walk follows, as Linux allows."""
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
"""Flags to open a file or folder for reading; ``O_NONBLOCK`` keeps a FIFO from blocking."""

_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_FOLDER = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Errors of an O_NOFOLLOW open that may mean "this name is a symbolic link".
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, errno.ENOTDIR})

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
# openat2's number in the generic syscall table, which these architectures share.
_OPENAT2_ARCHES = frozenset({"x86_64", "amd64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x"})


class EscapeError(Exception):
    """A symbolic link on the path leads outside the workspace."""


@dataclass(frozen=True)
class Opened:
    """An open descriptor and where it is in the workspace; a ``with`` block closes it."""

    fd: int
    """The descriptor."""
    parts: tuple[str, ...]
    """Its names from the workspace root down, symbolic links resolved."""

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)

    def __enter__(self) -> Opened:
        """Return itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the descriptor."""
        self.close()


class Beneath:
    """Opens paths beneath one root folder through descriptors (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str], aliases: Sequence[str] = ()) -> None:
        """Confine opens to ``root``, an absolute folder path without symbolic links.

        Args:
            root: The folder.
            aliases: Other absolute spellings of it (through a symbolic link above it); an
                absolute link target below one of them counts as inside.
        """
        self.root = os.fspath(root)
        """The root folder's absolute path."""
        self.aliases = tuple(dict.fromkeys([self.root, *aliases]))
        """The absolute spellings of the root that absolute link targets may start with."""

    def open(self, parts: Sequence[str], flags: int = READ_FLAGS, *, follow: bool = True) -> Opened:
        """Open ``parts`` (names below the root, no ``..``) with ``flags``.

        Args:
            parts: The path's names from the root down; empty for the root.
            flags: ``os.open`` flags for the last name (``READ_FLAGS``: a file or a folder).
            follow: Follow symbolic links that stay inside; when off, any link is an error.

        Returns:
            The open descriptor; close it, or use it as a ``with`` block.

        Raises:
            EscapeError: If a symbolic link leads outside the root.
            OSError: If a name is missing (``FileNotFoundError``), a folder on the path is a
                file (``NotADirectoryError``), links loop (``ELOOP``) or the open fails.
        """
        fd, where = self._open(tuple(parts), flags, follow)
        return Opened(fd, where)

    @contextlib.contextmanager
    def parent(
        self, parts: Sequence[str], *, create: bool = False
    ) -> Iterator[tuple[Opened, str | None]]:
        """Open the folder that holds ``parts``' last name, following that name while it is a
        symbolic link; give ``(folder, name)``, ``name`` ``None`` when the path is a folder.

        Args:
            parts: The path's names from the root down.
            create: Create missing folders on the way (never through a link leading outside).

        Raises:
            EscapeError: If a symbolic link leads outside the root.
            OSError: As ``open``; ``NotADirectoryError`` when a folder on the way is a file.
        """
        fd, where, name = self._parent(tuple(parts), create)
        try:
            yield Opened(fd, where), name
        finally:
            os.close(fd)

    def _open(
        self, parts: tuple[str, ...], flags: int, follow: bool
    ) -> tuple[int, tuple[str, ...]]:
        root = os.open(self.root, _FOLDER)
        try:
            fd = _openat2(root, "/".join(parts) or ".", flags)
            if fd is not None:
                return fd, parts
            fd, where, _ = self._walk(root, parts, flags=flags, follow=follow)
            return fd, where
        finally:
            os.close(root)

    def _parent(
        self, parts: tuple[str, ...], create: bool
    ) -> tuple[int, tuple[str, ...], str | None]:
        root = os.open(self.root, _FOLDER)
        try:
            if parts:
                try:
                    folder = _openat2(root, "/".join(parts[:-1]) or ".", _FOLDER)
                except FileNotFoundError:
                    if not create:
                        raise
                    folder = None
                if folder is not None:
                    if _link_target(parts[-1], folder) is None:
                        return folder, parts[:-1], parts[-1]
                    os.close(folder)
            return self._walk(root, parts, flags=None, follow=True, create=create)
        finally:
            os.close(root)

    def _walk(
        self,
        root: int,
        parts: tuple[str, ...],
        *,
        flags: int | None,
        follow: bool,
        create: bool = False,
    ) -> tuple[int, tuple[str, ...], str | None]:
        """Walk ``parts`` name by name from ``root``.

        With ``flags``, open the last name with them and return ``(fd, where, None)``; with
        ``None``, return the last name's folder and the name (``None``: the path is a folder).
        """
        folders = [root]  # descriptors of the folders walked through; the root is the caller's
        names: list[str] = []
        pending = deque(parts)
        budget = MAX_LINKS
        try:
            while pending:
                name = pending.popleft()
                here = folders[-1]
                if name == "..":  # only from a link's target
                    if len(folders) == 1:
                        raise EscapeError(name)
                    os.close(folders.pop())
                    names.pop()
                    continue
                target: str | None = None
                if pending:  # a folder on the way
                    try:
                        folders.append(os.open(name, _FOLDER, dir_fd=here))
                        names.append(name)
                        continue
                    except FileNotFoundError:
                        if not create:
                            raise
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(name, dir_fd=here)
                        pending.appendleft(name)  # open what was made; it may be a link by now
                    except OSError as exc:
                        target = _link_or_raise(exc, name, here, follow)
                elif flags is None:  # the last name, whose folder is wanted
                    target = _link_target(name, here)
                    if target is None:
                        return _take(folders), tuple(names), name
                else:  # the last name, to open
                    try:
                        fd = os.open(name, flags | os.O_NOFOLLOW, dir_fd=here)
                    except OSError as exc:
                        target = _link_or_raise(exc, name, here, follow)
                    else:
                        return fd, (*names, name), None
                budget -= 1
                if budget < 0:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/".join(parts))
                if target is not None:
                    self._splice(target, pending, folders, names)
            # Nothing left: the path ended on a folder (the root, or a link to a folder above).
            if flags is None:
                return _take(folders), tuple(names), None
            return os.open(".", flags, dir_fd=folders[-1]), tuple(names), None
        finally:
            for fd in folders[1:]:
                os.close(fd)

    def _splice(
        self, target: str, pending: deque[str], folders: list[int], names: list[str]
    ) -> None:
        """Put a link's ``target`` in front of the names still to walk."""
        if target.startswith("/"):
            target = self._inside(target)
            while len(folders) > 1:  # an absolute target is walked from the root
                os.close(folders.pop())
            names.clear()
        pending.extendleft(reversed([name for name in target.split("/") if name not in ("", ".")]))

    def _inside(self, target: str) -> str:
        """Return the absolute link ``target`` relative to the root; refuse it outside."""
        absolute = PurePosixPath(posixpath.normpath("/" + target.lstrip("/")))
        for alias in self.aliases:
            base = PurePosixPath(alias)
            if absolute.is_relative_to(base):
                return absolute.relative_to(base).as_posix()
        raise EscapeError(target)


def replace_file(folder: int, name: str, data: bytes) -> None:
    """Write ``data`` as ``name`` in the open ``folder``: a temporary file renamed over it.

    A failed write leaves the old file whole; a symbolic link named ``name`` is replaced, not
    followed.
    """
    temporary = f".{name[:200]}.{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise


def _take(folders: list[int]) -> int:
    """Remove the last folder from the walk's list and return it (a copy for the root)."""
    return folders.pop() if len(folders) > 1 else os.dup(folders[0])


def _link_target(name: str, folder: int) -> str | None:
    """Return the target of ``name`` in ``folder`` if it is a symbolic link, else ``None``."""
    try:
        return os.readlink(name, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise


def _link_or_raise(exc: OSError, name: str, folder: int, follow: bool) -> str:
    """Return the target of the link whose ``O_NOFOLLOW`` open failed with ``exc``, or raise
    ``exc`` when ``name`` is no link (and an ``ELOOP`` error when links are not followed)."""
    if exc.errno not in _LINK_ERRNOS:
        raise exc
    try:
        target = os.readlink(name, dir_fd=folder)
    except OSError:
        raise exc from None
    if not follow:
        raise OSError(errno.ELOOP, "a symbolic link is on the path", name)
    return target


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def _syscall() -> Callable[..., int] | None:
    if sys.platform != "linux" or platform.machine().lower() not in _OPENAT2_ARCHES:
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


_SYS_OPENAT2 = 437
_openat2_call = _syscall()


def _openat2(folder: int, path: str, flags: int) -> int | None:
    """Open ``path`` below ``folder`` in one step, with no symbolic link on it.

    Returns ``None`` when the walk has to decide: the kernel lacks ``openat2`` (or a seccomp
    filter hides it), or the path holds a symbolic link or raced with a rename.
    """
    global _openat2_call
    if _openat2_call is None:
        return None
    # Without O_NOFOLLOW a link as the last name fails with ELOOP too, rather than opening
    # the link itself (O_PATH) or failing as "not a folder" (O_DIRECTORY).
    how = _OpenHow(
        flags & ~os.O_NOFOLLOW, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
    )
    fd = _openat2_call(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(folder),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.E2BIG):  # no openat2, or too old for its flags
        _openat2_call = None
        return None
    if err in (errno.ELOOP, errno.EXDEV, errno.EAGAIN, errno.EPERM):
        return None
    raise OSError(err, os.strerror(err), path)
