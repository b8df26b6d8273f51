"""One reading of a workspace path, shared by the workspace tools and the safety policy.

The policy checks a path before the call and the workspace opens it during the call; when the two
read a path differently, the policy lets through what the tool refuses or blocks what the tool
would have served. Both therefore go through ``normalise_path``:

* surrounding whitespace (spaces, tabs, newlines) is dropped: small models pad paths with it;
* a NUL character is refused;
* an absolute path (``/x``, and the Windows forms ``\\x`` and ``C:\\x``) is refused, unless it
  names a place inside one of ``roots`` (the workspace tools pass their root; the policy does not
  know it and refuses every absolute path);
* ``~`` as the first part (the home folder) is refused;
* empty and ``.`` parts are dropped and ``..`` is collapsed against the part before it; a ``..``
  that would climb above the top folder is refused;
* everything else is a name: paths are POSIX paths, so a backslash is an ordinary character and
  ``a\\..\\b.txt`` is one harmless file name.

Example:
    >>> str(normalise_path(" ./notes//todo.txt\\n"))
    'notes/todo.txt'
    >>> path_problem("../secret.txt")
    "path '../secret.txt' leads outside the workspace"
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

__all__ = [
    "PathRefused",
    "WorkspacePath",
    "normalise_path",
    "normalise_path_args",
    "path_problem",
]

_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


class PathRefused(ValueError):
    """A path that cannot name anything inside the workspace; the message says why."""


@dataclass(frozen=True)
class WorkspacePath:
    """A normalised path inside the workspace: its names from the top folder down."""

    parts: tuple[str, ...]
    """Names from the workspace root down; empty for the root itself."""

    def __str__(self) -> str:
        """Return the path as shown and compared: ``a/b.txt``, or ``.`` for the root."""
        return "/".join(self.parts) or "."


def normalise_path(
    value: str | os.PathLike[str], *, roots: Sequence[str | os.PathLike[str]] = ()
) -> WorkspacePath:
    """Return the workspace path ``value`` names, by the rules of the module docstring.

    Args:
        value: The path as given: relative to the workspace, or absolute inside one of ``roots``.
        roots: Absolute spellings of the workspace folder; an absolute ``value`` below one of
            them is taken relative to it.

    Returns:
        The normalised path.

    Raises:
        PathRefused: If the path holds a NUL character, is absolute (outside ``roots``), starts
            at the home folder or climbs above the top folder.
    """
    text = os.fspath(value)
    if "\x00" in text:
        raise PathRefused("path contains a NUL byte")
    text = text.strip()
    relative = text
    if text.startswith(("/", "\\")) or _WINDOWS_ABSOLUTE.match(text):
        relative = _below(text, roots)
    elif text == "~" or text.startswith("~/"):
        raise PathRefused(
            f"path {text!r} starts at the home folder ('~'); use a path relative to the workspace"
        )
    parts: list[str] = []
    for name in relative.split("/"):
        if name in ("", "."):
            continue
        if name != "..":
            parts.append(name)
        elif parts:
            parts.pop()
        else:
            raise PathRefused(f"path {text!r} leads outside the workspace")
    return WorkspacePath(tuple(parts))


def path_problem(value: Any) -> str | None:
    """Return why ``value`` cannot be a workspace path (``normalise_path``), or ``None``.

    This is the safety policy's view: it does not know the workspace's location, so every
    absolute path is refused.
    """
    if value is None:
        return None
    try:
        normalise_path(str(value))
    except PathRefused as exc:
        return str(exc)
    return None


def normalise_path_args(args: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Return ``args`` with each string argument named in ``names`` normalised.

    Two calls that name the same file (``notes.txt`` and ``./notes.txt``) then have equal
    arguments. A value that is refused stays as given: the policy blocks that call anyway.
    """
    result = dict(args)
    for name in names:
        value = result.get(name)
        if isinstance(value, str):
            with contextlib.suppress(PathRefused):
                result[name] = str(normalise_path(value))
    return result


def _below(text: str, roots: Sequence[str | os.PathLike[str]]) -> str:
    """Return the absolute ``text`` relative to the first of ``roots`` it lies in."""
    if text.startswith("/"):
        # "//x" is "/x": normpath keeps a leading double slash, which POSIX leaves open.
        absolute = PurePosixPath(posixpath.normpath("/" + text.lstrip("/")))
        for root in roots:
            base = PurePosixPath(posixpath.normpath(os.fspath(root)))
            if absolute.is_relative_to(base):
                return absolute.relative_to(base).as_posix()
        if roots:
            raise PathRefused(f"path {text!r} is outside the workspace; use a path relative to it")
    raise PathRefused(f"path {text!r} is an absolute path; use a path relative to the workspace")
