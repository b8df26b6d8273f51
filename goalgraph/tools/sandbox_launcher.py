"""The python tool's launcher: sets a sandbox up as its JSON argument says, then starts the runner.

``goalgraph.tools.sandbox`` runs this file as ``python -I -S -B -X utf8 sandbox_launcher.py
CONFIG``, so at run time it imports only the standard library, plus pyseccomp loaded from the
file the parent names. Every decision (what to bind, which limits, which system calls to refuse)
is in ``CONFIG``; this file only carries it out. Whatever fails, the snippet does not run: the
launcher writes why to the setup pipe (``setup_fd``, closed on exec, so the snippet cannot write
there) and exits with the ``setup`` exit code.

With namespaces: new user, mount, UTS, network, pid and IPC namespaces, a private root built on a
tmpfs (read-only binds of what the interpreter needs, a synthetic ``/etc``, a few devices, a
size-capped ``/tmp``, a fresh ``/proc``), then the seccomp filter and the runner as pid 1 of the
new pid namespace. Without: resource limits, the seccomp filter and the runner in its strict
mode.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import resource
import signal
import sys
from typing import Any, NoReturn

# Linux constants (<sched.h>, <sys/mount.h>, <linux/mount.h>, <sys/prctl.h>).
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2
_MOUNT_ATTR_RDONLY = 0x1
_MOUNT_ATTR_NOSUID = 0x2
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}
_NOBODY = 65534
_SETUP_FAILED = "sandbox setup failed: "


def launch(config: dict[str, Any]) -> NoReturn:
    """Set the sandbox up as ``config`` says and start the runner; never returns."""
    setup_fd = int(config["setup_fd"])
    try:
        os.set_inheritable(setup_fd, False)  # closed when the runner starts
        seccomp = _build_seccomp(config["seccomp"]) if config["seccomp"] else None
        if config["isolate"]:
            _launch_isolated(config, seccomp)
        else:
            _launch_plain(config, seccomp)
    except Exception as exc:  # whatever fails, the snippet must not run unconfined
        _report_setup_failure(setup_fd, exc)
    os._exit(config["exit_codes"]["setup"])


def _report_setup_failure(setup_fd: int, exc: BaseException) -> None:
    """Write why setup failed to the setup pipe, which only the launcher holds."""
    message = f"{_SETUP_FAILED}{type(exc).__name__}: {exc}\n".encode("utf-8", "replace")
    with contextlib.suppress(OSError):  # the parent left; nobody is listening
        os.write(setup_fd, message[:4000])


def _launch_isolated(config: dict[str, Any], seccomp: Any) -> None:
    """Enter new namespaces, build the private root, and run the runner as their pid 1."""
    os.umask(0o022)
    _set_limit(resource.RLIMIT_CORE, 0)
    as_root = os.geteuid() == 0
    if as_root:
        # Real root builds the root in a mount namespace of its own (it can read everything it
        # binds), then becomes nobody, whom RLIMIT_NPROC applies to.
        _unshare(_CLONE_NEWNS)
        _build_root(config)
        os.setgroups([])
        os.setresgid(_NOBODY, _NOBODY, _NOBODY)
        os.setresuid(_NOBODY, _NOBODY, _NOBODY)
        # Changing user made this process undumpable, which leaves /proc/self owned by root.
        _prctl(_PR_SET_DUMPABLE, 1)
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC
    _unshare(flags | _CLONE_NEWUTS)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _set_host_name(config["hostname"])
    if not as_root:
        _build_root(config)
    alive_r, alive_w = os.pipe()  # the write end closes when the launcher dies
    child = os.fork()
    if child == 0:
        try:
            os.close(alive_w)
            _enter_root(config, alive_r, seccomp)
        except BaseException as exc:
            _report_setup_failure(int(config["setup_fd"]), exc)
            os._exit(config["exit_codes"]["setup"])
    os.close(alive_r)
    _relay_exit(child, config["cpu_s"])


def _build_root(config: dict[str, Any]) -> None:
    """Mount the sandbox's future root on ``config["root"]`` (still below the host's root).

    Binds come first and are real paths, so no folder made for them passes through a symlink
    made here; a symlink whose folder is bound already exists there and is skipped.
    """
    root = config["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for path in config["binds"]:
        target = root + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(path, target, None, _MS_BIND | _MS_REC)
    for path in config["masks"]:  # e.g. site-packages inside the bound standard library
        _mount("tmpfs", root + path, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4k,mode=0755")
    bound = tuple(path.rstrip("/") + "/" for path in config["binds"])
    for path, target in config["links"].items():
        if not path.startswith(bound):
            os.makedirs(root + os.path.dirname(path), exist_ok=True)
            os.symlink(target, root + path)
    os.makedirs(root + "/etc", exist_ok=True)
    for name, text in config["etc"].items():
        fd = os.open(f"{root}/etc/{name}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    os.makedirs(root + "/dev")
    for name in config["devices"]:
        os.close(os.open(f"{root}/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(f"/dev/{name}", f"{root}/dev/{name}", None, _MS_BIND)
    for name, target in {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0"}.items():
        os.symlink(target, f"{root}/dev/{name}")
    os.symlink("/proc/self/fd/1", f"{root}/dev/stdout")
    os.symlink("/proc/self/fd/2", f"{root}/dev/stderr")
    os.makedirs(root + "/tmp", exist_ok=True)
    size = f"size={config['workdir_mb']}m,mode=1777"
    _mount("tmpfs", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, size)
    os.makedirs(root + "/proc", exist_ok=True)


def _enter_root(config: dict[str, Any], launcher_alive: int, seccomp: Any) -> NoReturn:
    """As pid 1 of the new pid namespace: mount /proc, switch root, limit, run the runner."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher's death ends the namespace
    os.set_blocking(launcher_alive, False)
    try:
        if not os.read(launcher_alive, 1):  # end of file: it died before the line above
            os._exit(config["exit_codes"]["setup"])
    except BlockingIOError:
        pass  # it lives
    os.close(launcher_alive)
    root = config["root"]
    # pivot_root refuses a locked mount, which the root is when real root built it outside this
    # user namespace; a bind made here is not locked.
    _mount(root, root, None, _MS_BIND | _MS_REC)
    try:
        _mount("proc", root + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    except OSError:
        pass  # some containers forbid a new /proc; an empty /proc reveals nothing either
    else:
        # No nested user namespaces: less kernel surface for the snippet to poke at.
        _write(root + "/proc/sys/user/max_user_namespaces", "0", missing_ok=True)
    os.chdir(root)
    _pivot_root()
    _mount_setattr("/", _AT_RECURSIVE, _MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID, 0)
    _mount_setattr("/tmp", 0, 0, _MOUNT_ATTR_RDONLY)
    os.chdir("/tmp")
    _apply_limits(config, tasks=config["max_tasks"])
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None:
        seccomp.load()  # last: from here on mount, unshare and the like are refused
    _exec_runner(config, "jail", "/tmp")


def _relay_exit(child: int, cpu_s: int) -> NoReturn:
    """Wait for the sandbox's pid 1 and end this process the same way it ended."""
    _, status, usage = os.wait4(child, 0)
    if not os.WIFSIGNALED(status):
        os._exit(os.waitstatus_to_exitcode(status))
    number = os.WTERMSIG(status)
    if number == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= cpu_s:
        number = signal.SIGXCPU  # the hard CPU limit kills with SIGKILL
    if number not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)  # only if the signal did not end this process


def _launch_plain(config: dict[str, Any], seccomp: Any) -> None:
    """The fallback without namespaces: limits, then the runner with its strict audit hook."""
    _set_limit(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC counts every task of this user, so allow the current count plus the quota.
    _apply_limits(config, tasks=_count_tasks(os.getuid()) + config["max_tasks"])
    os.chdir(config["root"])
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None:
        seccomp.load()
    _exec_runner(config, "strict", config["root"])


def _build_seccomp(spec: dict[str, Any]) -> Any:
    """Build (not yet load) the seccomp filter ``spec`` describes, with pyseccomp from its file.

    Built before anything else, while the launcher may still read every file (a launcher
    started as root drops to nobody later); loaded last, just before the runner starts.
    """
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("pyseccomp", spec["module"])
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load pyseccomp from {spec['module']}")
    seccomp = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(seccomp)
    syscall_filter = seccomp.SyscallFilter(seccomp.ALLOW)
    for name, number, conditions in spec["rules"]:
        syscall = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
        if syscall < 0:
            continue  # not a system call of this architecture (or of this libseccomp)
        args = [seccomp.Arg(arg, getattr(seccomp, op), a, b) for arg, op, a, b in conditions]
        syscall_filter.add_rule(seccomp.ERRNO(number), syscall, *args)
    return syscall_filter


def _apply_limits(config: dict[str, Any], *, tasks: int) -> None:
    """Set the snippet's resource limits (hard limits too, so it cannot raise them)."""
    mib = 1024 * 1024
    cpu = int(config["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 1)  # SIGXCPU first, SIGKILL a second later
    _set_limit(resource.RLIMIT_AS, int(config["memory_mb"]) * mib)
    _set_limit(resource.RLIMIT_FSIZE, int(config["file_mb"]) * mib)
    _set_limit(resource.RLIMIT_NOFILE, int(config["open_files"]))
    _set_limit(resource.RLIMIT_NPROC, tasks)


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    """Set a resource limit, never above the current hard limit."""
    current_hard = resource.getrlimit(which)[1]
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _count_tasks(uid: int) -> int:
    """Count the processes and threads ``uid`` runs now (RLIMIT_NPROC counts both)."""
    count = 0
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            continue  # it ended meanwhile
    return count


def _exec_runner(config: dict[str, Any], mode: str, home: str) -> NoReturn:
    """Replace this process with a fresh interpreter running the snippet from stdin."""
    python = config["python"]
    argv = [python, "-I", "-S", "-B", "-X", "utf8", "-c", config["runner"], mode]
    argv.append(json.dumps({"exit_codes": config["exit_codes"], "refusals": config["refusals"]}))
    os.execve(python, argv, {**config["env"], "HOME": home, "TMPDIR": home})


# --- Linux system calls through ctypes ----------------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    """Return the C library, with errno kept for error messages."""
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    """Raise OSError for a failed system call."""
    if result == -1:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _unshare(flags: int) -> None:
    """Move this process into new namespaces (``unshare(2)``; Python 3.11 has no os.unshare)."""
    _check(_libc().unshare(ctypes.c_int(flags)), "unshare")


def _set_host_name(name: str) -> None:
    """Name the new UTS namespace, so the snippet never sees the host's name."""
    raw = name.encode()
    _check(_libc().sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")
    _check(_libc().setdomainname(b"(none)", ctypes.c_size_t(6)), "setdomainname")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """Call ``mount(2)``."""

    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    result = _libc().mount(raw(source), raw(target), raw(fstype), ctypes.c_ulong(flags), raw(data))
    _check(result, f"mount {target}")


def _mount_setattr(path: str, flags: int, attr_set: int, attr_clr: int) -> None:
    """Change mount attributes, recursively with AT_RECURSIVE (``mount_setattr(2)``)."""
    attr = (ctypes.c_uint64 * 4)(attr_set, attr_clr, 0, 0)  # struct mount_attr
    result = _libc().syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(_AT_FDCWD),
        os.fsencode(path),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    _check(result, f"mount_setattr {path}")


def _pivot_root() -> None:
    """Make the current directory the root and detach the old root beneath it."""
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: unknown architecture {os.uname().machine}")
    _check(_libc().syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _check(_libc().umount2(b".", ctypes.c_int(_MNT_DETACH)), "umount old root")
    os.chdir("/")


def _prctl(option: int, value: int) -> None:
    """Call ``prctl(2)`` with one argument."""
    zero = ctypes.c_ulong(0)
    _check(_libc().prctl(ctypes.c_int(option), ctypes.c_ulong(value), zero, zero, zero), "prctl")


def _write(path: str, text: str, *, missing_ok: bool = False) -> None:
    """Write ``text`` to a /proc file (with os calls: after dropping root, the launcher can no
    longer import modules, codecs included, from an installation only root may read)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


if __name__ == "__main__":
    launch(json.loads(sys.argv[1]))
