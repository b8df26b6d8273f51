"""What the python sandbox's private root holds: what the interpreter needs, and a fake ``/etc``.

The root is a tmpfs. Into it go, read-only and at their own paths: the Python executable, its
standard library (``site-packages`` hidden under an empty tmpfs), the folders of the shared
libraries the interpreter and its extension modules load (found once by importing every
extension module of the standard library in a throwaway interpreter and reading its
``/proc/self/maps``; whole folders, because the C library loads more at run time: libgcc_s for
thread exits, NSS and iconv modules), and the time-zone database. The symlinks on the way to
them (``/lib64 -> usr/lib64``, the dynamic loader's own link) are recreated, not followed. The
host's ``/etc``, ``/usr/bin``, home folders and the rest of the installation stay out; ``/etc``
is synthetic: ``passwd`` and ``group`` with only the sandbox's user and ``nobody``, ``hosts``
with localhost, the host name ``sandbox`` (also the UTS namespace's name).
"""

from __future__ import annotations

import functools
import os
import struct
import subprocess
import sys
import sysconfig
from dataclasses import dataclass

__all__ = ["HOST_NAME", "JailLayout", "jail_layout", "synthetic_etc"]

HOST_NAME = "sandbox"
"""The host name a snippet sees."""

_NOBODY = 65534
_SO_MARK = "shared-object:"
# Imports every extension module of the standard library, then lists the shared objects mapped.
_LIBRARY_PROBE = f"""
import os, sys
for folder in [p for p in sys.path if p.endswith("lib-dynload")]:
    for name in sorted(os.listdir(folder)):
        if name.endswith(".so"):
            try:
                __import__(name.partition(".")[0])
            except BaseException:
                pass
for line in open("/proc/self/maps"):
    parts = line.split(None, 5)
    if len(parts) == 6 and ".so" in parts[5]:
        print({_SO_MARK!r} + parts[5].strip())
"""
_ZONEINFO = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo")


@dataclass(frozen=True)
class JailLayout:
    """The read-only content of the sandbox's root, all at the same paths as on the host."""

    binds: tuple[str, ...]
    """Real folders and files, none inside another."""
    masks: tuple[str, ...]
    """Folders inside ``binds`` hidden under an empty tmpfs (the installation's site-packages)."""
    links: dict[str, str]
    """Symlinks to recreate on the way to ``binds``: path to target, as on the host."""
    library_path: str
    """``LD_LIBRARY_PATH`` for the runner: the library folders (the jail has no ld.so.cache)."""


@functools.cache
def jail_layout(python: str) -> JailLayout:
    """Work out what the sandbox's root needs for the interpreter ``python`` (cached).

    Args:
        python: The real path of the interpreter the sandbox runs.

    Returns:
        The layout; the probe that finds the libraries runs once per interpreter.
    """
    links: dict[str, str] = {}
    wanted = [python, *_stdlib_folders(), *_zoneinfo()]
    interpreter = _elf_interpreter(python)
    if interpreter:
        wanted.append(os.path.dirname(_reach(interpreter, links)))
    libraries = sorted({os.path.dirname(_reach(path, links)) for path in _shared_objects(python)})
    wanted += libraries
    binds: list[str] = []
    for path in sorted({_reach(path, links) for path in wanted}, key=len):
        if not any(path == bound or path.startswith(bound + "/") for bound in binds):
            binds.append(path)
    masks = [path for path in _site_packages() if any(path.startswith(b + "/") for b in binds)]
    return JailLayout(tuple(binds), tuple(masks), links, ":".join(libraries))


def synthetic_etc(uid: int, gid: int) -> dict[str, str]:
    """Return the sandbox's ``/etc`` files: its own user and ``nobody``, localhost, its name.

    Args:
        uid: The user the snippet runs as (the server's, or nobody's when the server is root).
        gid: Its group.

    Returns:
        File name to content.
    """
    users = [f"nobody:x:{_NOBODY}:{_NOBODY}:nobody:/nonexistent:/usr/sbin/nologin"]
    groups = [f"nogroup:x:{_NOBODY}:"]
    if uid != _NOBODY:
        users.insert(0, f"sandbox:x:{uid}:{gid}:sandbox:/tmp:/usr/sbin/nologin")
    if gid != _NOBODY:
        groups.insert(0, f"sandbox:x:{gid}:")
    return {
        "passwd": "\n".join(users) + "\n",
        "group": "\n".join(groups) + "\n",
        "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{HOST_NAME}\n",
        "hostname": HOST_NAME + "\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }


def _reach(path: str, links: dict[str, str]) -> str:
    """Return the real path of ``path``, recording in ``links`` each symlink passed on the way.

    Every recorded symlink sits in a real folder, so the launcher can recreate it without
    following another symlink.
    """
    real = "/"
    parts = [part for part in path.split("/") if part]
    for _ in range(64):  # at most this many symlinks, as in the kernel's own resolution
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            candidate = os.path.dirname(real) if part == ".." else os.path.join(real, part)
            if os.path.islink(candidate):
                target = os.readlink(candidate)
                links[candidate] = target
                base = "/" if target.startswith("/") else real
                parts = [p for p in os.path.join(base, target).split("/") if p] + parts
                real = "/"
                break
            real = candidate
        else:
            return real
    raise OSError(f"too many symlinks on the way to {path}")


def _elf_interpreter(executable: str) -> str | None:
    """Return the dynamic loader a 64-bit ELF executable names (its PT_INTERP), if any."""
    try:
        with open(executable, "rb") as handle:
            head = handle.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # ELFCLASS64 only
                return None
            order = "<" if head[5] == 1 else ">"
            (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
            size, count = struct.unpack_from(order + "HH", head, 0x36)
            for index in range(count):
                handle.seek(phoff + index * size)
                kind, _, offset, _, _, filesz = struct.unpack(order + "IIQQQQ", handle.read(40))
                if kind == 3:  # PT_INTERP
                    handle.seek(offset)
                    return handle.read(filesz).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def _shared_objects(python: str) -> list[str]:
    """Return the shared objects ``python`` maps once every standard extension is imported."""
    done = subprocess.run(
        [python, "-I", "-S", "-c", _LIBRARY_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    lines = done.stdout.splitlines()
    found = [line.removeprefix(_SO_MARK) for line in lines if line.startswith(_SO_MARK)]
    # The extension modules themselves live in the standard library, bound anyway.
    return [path for path in found if os.path.isfile(path) and "/lib-dynload/" not in path]


def _stdlib_folders() -> list[str]:
    """Return the base installation's standard library folders (lib-dynload is inside)."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    paths = {sysconfig.get_path(name, vars=base) for name in ("stdlib", "platstdlib")}
    return sorted(os.path.realpath(path) for path in paths)


def _site_packages() -> list[str]:
    """Return the base installation's site-packages folders (not the virtualenv's)."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    paths = {sysconfig.get_path(name, vars=base) for name in ("purelib", "platlib")}
    return sorted(os.path.realpath(path) for path in paths if os.path.isdir(path))


def _zoneinfo() -> list[str]:
    """Return the time-zone database folder, for ``zoneinfo``, if there is one."""
    return [os.path.realpath(path) for path in _ZONEINFO if os.path.isdir(path)][:1]
