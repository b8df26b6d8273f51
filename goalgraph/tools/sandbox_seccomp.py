"""The seccomp filter of the python tool's sandbox: system calls no snippet needs are refused.

Namespaces already keep a snippet away from the host's files, network and processes; this filter
shrinks what it can ask of the kernel inside them, the place where a sandbox escape would start.
It refuses, with ``EPERM``: io_uring, the kernel keyrings, ptrace and cross-process memory
access, bpf, perf events, userfaultfd, loading kernels and modules, every mount call (the
sandbox is set up before the filter is loaded), new namespaces (``unshare``, ``setns``,
``clone`` with a ``CLONE_NEW*`` flag), file handles (``open_by_handle_at``), changing the
execution domain (``personality``), and clock, host-name, swap, quota, accounting and reboot
calls. ``clone3`` gets ``ENOSYS`` (its flags sit in memory a filter cannot read), so the C
library falls back to ``clone``, whose flags it can. Everything else is allowed: a deny list
keeps ordinary Python working, where an allow list would break on the next C library.

The filter is written through libseccomp (the ``libseccomp2`` system package) by ``pyseccomp``,
a pure-ctypes binding, so the architecture's system call numbers and its audit-arch check come
from libseccomp rather than from tables kept here; a system call of another ABI (32-bit calls
on x86_64) kills the process. The launcher builds the filter in the sandbox and loads it just
before the runner starts; ``seccomp_support`` says whether this machine can.
"""

from __future__ import annotations

import errno
import functools
from typing import Any

__all__ = [
    "DENIED_SYSCALLS",
    "PROBE_SYSCALLS",
    "probe_snippet",
    "seccomp_rules",
    "seccomp_support",
]

DENIED_SYSCALLS = (
    # io_uring: a second system call interface that seccomp cannot see into.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # Kernel keyrings.
    "keyctl",
    "add_key",
    "request_key",
    # Other processes' memory and state.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    # Kernel subsystems with a record of privilege escalations.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "fanotify_init",
    "lookup_dcookie",
    # Kernels and modules.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    # Mounts (the sandbox's own are made before the filter is loaded).
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # Namespaces.
    "unshare",
    "setns",
    # File handles: the classic way out of a chroot or a container.
    "open_by_handle_at",
    "name_to_handle_at",
    # The machine's settings.
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "vhangup",
    "quotactl",
    "quotactl_fd",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "ioperm",
    "iopl",
    # Obsolete interfaces.
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "nfsservctl",
)
"""System calls refused whatever their arguments."""

_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
_PERSONALITY_QUERY = 0xFFFFFFFF  # personality(0xffffffff) only reads the current one


def seccomp_rules() -> list[list[Any]]:
    """Return the filter as JSON-ready rules for the launcher.

    Returns:
        ``[name, errno, conditions]`` per rule, each condition ``[arg, op, a, b]`` with ``op``
        a pyseccomp comparison name; all conditions of a rule must hold for it to refuse.
    """
    rules: list[list[Any]] = [[name, errno.EPERM, []] for name in DENIED_SYSCALLS]
    rules += [["clone", errno.EPERM, [[0, "MASKED_EQ", f, f]]] for f in _CLONE_NAMESPACE_FLAGS]
    rules.append(["clone3", errno.ENOSYS, []])
    rules.append(["personality", errno.EPERM, [[0, "NE", _PERSONALITY_QUERY, 0]]])
    return rules


@functools.cache
def seccomp_support() -> tuple[str | None, str]:
    """Say whether the sandbox can load the filter here.

    Returns:
        The path of pyseccomp's module file for the launcher to load, and ``""``; or None and
        why not (pyseccomp missing, libseccomp missing).
    """
    try:
        import pyseccomp
    except ImportError:
        return None, "the pyseccomp package is not installed"
    except (OSError, RuntimeError) as exc:  # pyseccomp loads libseccomp when imported
        return None, f"libseccomp is unavailable ({exc}); install libseccomp2"
    return str(pyseccomp.__file__), ""


PROBE_SYSCALLS = {
    "x86_64": {"io_uring_setup": 425, "keyctl": 250, "ptrace": 101, "bpf": 321, "unshare": 272,
               "perf_event_open": 298, "userfaultfd": 323, "getpid": 39},
    "aarch64": {"io_uring_setup": 425, "keyctl": 219, "ptrace": 117, "bpf": 280, "unshare": 97,
                "perf_event_open": 241, "userfaultfd": 282, "getpid": 172},
}  # fmt: skip
"""System call numbers ``probe_snippet`` tries, per machine: calls the filter must refuse, and
``getpid``, which it must let through."""


def probe_snippet(numbers: dict[str, int]) -> str:
    """Return a python-tool snippet that makes each call of ``numbers`` in a child interpreter
    and prints ``{name: [result, errno]}`` as JSON (a refused call reads ``[-1, 1]``, EPERM).

    A child interpreter has no audit hook, so it may use ctypes: only the filter refuses.
    """
    child = (
        "import ctypes, json\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)\n"
        f"numbers = {numbers!r}\n"
        "args = {'io_uring_setup': (1, params), 'keyctl': (0, -1, 0), 'ptrace': (0, 0, 0, 0),\n"
        "    'bpf': (0, 0, 0), 'unshare': (0x10000000,), 'userfaultfd': (0,), 'getpid': (),\n"
        "    'perf_event_open': (params, 0, -1, -1, 0)}\n"
        "seen = {}\n"
        "for name, number in numbers.items():\n"
        "    ctypes.set_errno(0)\n"
        "    seen[name] = (libc.syscall(number, *args[name]), ctypes.get_errno())\n"
        "print(json.dumps(seen))\n"
    )
    run = f"subprocess.run([sys.executable, '-I', '-S', '-c', {child!r}])"
    return f"import subprocess, sys\n_ = {run}"  # assigned: the python tool shows a bare value
