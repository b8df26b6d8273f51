"""An attacker that can write to the workspace: swaps names for links to outside, over and over.

Usage: ``python link_swapper.py WORKSPACE OUTSIDE SECONDS MODE``. It expects
``WORKSPACE/notes.txt`` (a file), ``WORKSPACE/box/`` (a folder), ``OUTSIDE/secret.txt`` and
``OUTSIDE/box/``. In ``links`` mode it swaps ``notes.txt`` with a symbolic link to
``OUTSIDE/secret.txt`` and ``box`` with one to ``OUTSIDE/box``; in ``fifo`` mode it swaps
``notes.txt`` with a FIFO. A swap is an atomic ``renameat2(RENAME_EXCHANGE)`` where the kernel and
file system have it, so the name always exists; otherwise two renames. It prints ``ready`` once
set up and, after ``SECONDS``, the number of swaps it made.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Callable

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchanger() -> Callable[..., int] | None:
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    return function


_RENAMEAT2 = _exchanger()


def swap(name: str, decoy: str) -> None:
    """Exchange ``name`` and ``decoy`` (atomically when the system allows)."""
    global _RENAMEAT2
    if _RENAMEAT2 is not None:
        done = _RENAMEAT2(_AT_FDCWD, name.encode(), _AT_FDCWD, decoy.encode(), _RENAME_EXCHANGE)
        if done == 0:
            return
        _RENAMEAT2 = None  # not supported here: fall back to renames
    os.rename(name, name + ".away")
    os.rename(decoy, name)
    os.rename(name + ".away", decoy)


def main() -> None:
    """Run the swaps described in the module docstring."""
    workspace, outside, seconds, mode = sys.argv[1:5]
    os.chdir(workspace)
    pairs = [("notes.txt", ".decoy-notes")]
    if mode == "fifo":
        os.mkfifo(".decoy-notes")
    else:
        os.symlink(os.path.join(outside, "secret.txt"), ".decoy-notes")
        os.symlink(os.path.join(outside, "box"), ".decoy-box")
        pairs.append(("box", ".decoy-box"))
    print("ready", flush=True)
    swaps = 0
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        for name, decoy in pairs:
            try:
                swap(name, decoy)
                swaps += 1
            except OSError:
                continue  # a tool's write raced with a fallback rename; keep going
    print(swaps, flush=True)


if __name__ == "__main__":
    main()
