"""Budgets of the python sandbox that span processes: memory per call, sandboxes per server.

``RLIMIT_AS`` caps each process, and a forked child gets a whole new allowance; so the parent
also adds up the memory of every process of one sandbox (the launcher and all its descendants;
orphans inside the pid namespace are re-parented to its pid 1, so they stay in the tree) every
``MEMORY_POLL_S`` and kills the sandbox when the sum passes its budget. A process's share is its
proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``: pages shared after a fork count
once in all), or its resident size where that file is missing. A delegated cgroup v2 would
charge the kernel's own count instead; none is assumed, since on most machines (this one: cgroup
v1, owned by the container) a server process cannot create one.

``SandboxSlots`` caps the sandboxes running at once in this process: a call waits for a slot
up to its own time limit, then is refused.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["MEMORY_POLL_S", "SandboxSlots", "sandbox_memory"]

MEMORY_POLL_S = 0.05
"""Seconds between two sums of a sandbox's memory."""

_PAGE = os.sysconf("SC_PAGE_SIZE")


class SandboxSlots:
    """A cap on the sandboxes running at once, shared by every caller in this process."""

    def __init__(self) -> None:
        """Start with no sandbox running."""
        self._running = 0
        self._changed = threading.Condition()

    @property
    def running(self) -> int:
        """Sandboxes running now."""
        return self._running

    @contextlib.contextmanager
    def slot(self, limit: int, wait_s: float) -> Iterator[bool]:
        """Hold a slot while fewer than ``limit`` sandboxes run, waiting up to ``wait_s``.

        Yields:
            True with a slot held until the block ends; False when none freed up in time.
        """
        with self._changed:
            got = self._changed.wait_for(lambda: self._running < limit, timeout=wait_s)
            if got:
                self._running += 1
        try:
            yield got
        finally:
            if got:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()


def sandbox_memory(pid: int) -> int:
    """Return the bytes used by process ``pid`` and all its descendants (0 if it is gone)."""
    return sum(_process_memory(member) for member in _process_tree(pid))


def _process_tree(pid: int) -> list[int]:
    """Return ``pid`` and its descendants that are alive now."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending += _children(current)
    return found


def _children(pid: int) -> list[int]:
    """Return the children of ``pid`` from each of its threads' ``children`` file."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as handle:
                children += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
    return children


def _process_memory(pid: int) -> int:
    """Return the proportional set size of ``pid``, or its resident size, in bytes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0  # it ended meanwhile
