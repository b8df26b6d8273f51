"""Run an untrusted Python snippet in a sandboxed subprocess (the builtin ``python`` tool).

Each call starts a launcher, ``python -I -S`` running this very file, which sets the sandbox up
and then starts a fresh interpreter (the runner) for the snippet. The layers, strongest first:

* Namespaces (Linux, when unprivileged user namespaces work): the runner gets its own user,
  network, mount, pid and IPC namespaces. The network namespace has only a loopback device, and
  it is down. The mount namespace has a private root: the system folders (``/usr``, ``/etc``,
  the Python installation) read-only, a size-capped writable ``/tmp`` (the working folder) and a
  fresh ``/proc`` that shows only the sandbox's own processes; nothing else of the host (home
  folders, the project, other processes' environments) is visible. The runner holds no
  capabilities; a server running as root drops to ``nobody`` first, because the kernel never
  applies ``RLIMIT_NPROC`` to root.
* Resource limits: CPU seconds, address space, file size, open files, no core dumps, and a cap
  on processes plus threads (counted inside the sandbox's own user namespace); a wall-clock
  timeout kills the launcher's process group, and with it the sandbox's pid namespace.
* An audit hook in the runner (defence in depth; it cannot be removed, but Python code is not a
  security boundary): refuses sockets that connect, bind or resolve names, ``ctypes``, and the
  introspection that could reach the hook. Without namespaces it is the fallback, and then also
  refuses starting processes, writing outside the working folder and reading other processes'
  /proc entries (a determined snippet may still find a way around it).

Namespaces need Linux 5.12 or later (mount_setattr) on x86_64, aarch64 or riscv64; where they
fail, ``sandbox_capabilities`` reports it and logs a warning, and snippets run in the fallback.

Run as a script, this module is the launcher, so at run time it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import logging
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from goalgraph.spec import PythonToolSpec

__all__ = [
    "MAX_CODE_CHARS",
    "SandboxResult",
    "failure_summary",
    "run_python",
    "sandbox_capabilities",
]

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 100_000
"""Longest snippet accepted; longer code is refused without starting a process."""
MAX_SUMMARY_LINE_CHARS = 120
"""Longest line (the exception, the failing source line) that ``failure_summary`` shows."""

_MAX_TASKS = 16  # processes plus threads inside the sandbox (RLIMIT_NPROC)
_FILE_MB = 16  # largest file the snippet may write (RLIMIT_FSIZE)
_OPEN_FILES = 64  # RLIMIT_NOFILE
_WORKDIR_MB = 64  # size of the sandbox's /tmp
_NOBODY = 65534
_DEVICES = ("null", "zero", "full", "random", "urandom")
_SETUP_FAILED = "sandbox setup failed: "
_EXCEPTION = "the snippet raised an exception"
_SNIPPET_FRAME = re.compile(r'^  File "<snippet>", line (\d+)')
_PROBE_LOCK = threading.Lock()
_BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}

# Exit codes by which the runner and the launcher tell the parent why they stopped.
_EXIT_CODES = {
    "setup": 110,
    "exception": 111,
    "memory": 112,
    "network": 113,
    "ctypes": 114,
    "introspection": 115,
    "spawn": 116,
    "write": 117,
    "processes": 118,
    "file_size": 119,
    "disk_full": 120,
    "cpu": 121,
    "proc": 122,
}
# What the audit hook says when it refuses something (the runner keys its exit code on them).
_REFUSALS = {
    "network": "network access is disabled in the sandbox",
    "ctypes": "ctypes is disabled in the sandbox",
    "introspection": "this introspection is disabled in the sandbox",
    "spawn": "starting processes is disabled in the sandbox",
    "write": "writing outside the sandbox's working folder is disabled",
    "proc": "reading other processes is disabled in the sandbox",
}

# Linux constants (<sched.h>, <sys/mount.h>, <linux/mount.h>, <sys/prctl.h>).
_CLONE_NEWNS = 0x00020000
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


@dataclass(frozen=True)
class SandboxResult:
    """What a snippet did."""

    ok: bool
    """True when the snippet ran to the end (exit code 0)."""
    output: str
    """Its stdout, then its stderr, capped at ``max_output_chars`` with a note where cut."""
    exit_code: int | None
    """The process's exit code (negative: killed by that signal); None when it never started."""
    reason: str | None
    """One line saying why it failed, e.g. ``killed: exceeded the 10 s time limit``."""
    elapsed_s: float
    """Wall-clock seconds the call took."""


# --- the parent side ----------------------------------------------------------------------------


def run_python(code: str, limits: PythonToolSpec, *, isolate: bool | None = None) -> SandboxResult:
    """Run ``code`` in a fresh sandboxed interpreter and return its output.

    Args:
        code: Python 3 source; it runs as ``__main__`` with the working folder as cwd and
            stdin at end of file.
        limits: Time, CPU, memory and output limits.
        isolate: Use namespaces (True), only the audit hook and rlimits (False), or namespaces
            when this machine supports them (None, the default).

    Returns:
        The outcome; failures (including the sandbox's refusals) have ``ok=False`` and a reason.
    """
    started = time.monotonic()
    if len(code) > MAX_CODE_CHARS:
        refusal = f"refused: the code has {len(code)} characters; the limit is {MAX_CODE_CHARS}"
        return SandboxResult(False, "", None, refusal, 0.0)
    if isolate is None:
        isolate = bool(sandbox_capabilities()["namespaces"])
    with tempfile.TemporaryDirectory(prefix="goalgraph-py-", ignore_cleanup_errors=True) as tmp:
        if isolate:
            os.chmod(tmp, 0o755)  # the launcher may have dropped to nobody when it mounts there
        command = [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__)]
        command.append(json.dumps(_launcher_config(tmp, limits, isolate)))
        with subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp,
            env={**_BASE_ENV, "HOME": tmp, "TMPDIR": tmp},
            start_new_session=True,  # its own process group, killed as a whole on timeout
        ) as process:
            try:
                streams = _exchange(process, code.encode("utf-8", "replace"), limits)
            finally:
                _kill_group(process)
    returncode = process.returncode
    output = _combine(streams, limits.max_output_chars)
    reason = _reason(returncode, streams.timed_out, streams.stderr, limits)
    return SandboxResult(reason is None, output, returncode, reason, time.monotonic() - started)


def failure_summary(result: SandboxResult, code: str) -> str:
    """Say in at most three short lines why a snippet failed, for a model to fix it.

    A small model reads this, so instead of the whole traceback it gets the reason (unless it
    is only "the snippet raised an exception"), the traceback's exception line, and the line of
    the snippet that failed (the last frame in the snippet, taken from ``code``), each cut to
    ``MAX_SUMMARY_LINE_CHARS``. A failure without a traceback, such as a timeout, keeps the last
    line of its output when there is one.

    Example:
        ``NameError: name 'python' is not defined`` / ``at line 1: python``

    Args:
        result: The failed run.
        code: The snippet that ran.

    Returns:
        The lines, joined with newlines.
    """
    lines = result.output.splitlines()
    frames = [at for at, line in enumerate(lines) if line.startswith('  File "')]
    exception = ""
    if frames:  # The exception line: the first line after the last frame that is not indented.
        after = [line for line in lines[frames[-1] + 1 :] if line and not line[0].isspace()]
        exception = after[0] if after else ""
    elif result.reason == _EXCEPTION and lines:
        exception = next((line for line in reversed(lines) if line.strip()), "")
    summary = [] if exception and result.reason == _EXCEPTION else [result.reason or "failed"]
    if exception:
        summary.append(_clip_line(exception))
    numbers = [_SNIPPET_FRAME.match(lines[at]) for at in frames]
    found = [int(match[1]) for match in numbers if match]
    source = code.splitlines()
    if found and 0 < found[-1] <= len(source):
        summary.append(f"at line {found[-1]}: {_clip_line(source[found[-1] - 1].strip())}")
    if not frames and not exception and result.output.strip():
        summary.append(_clip_line(next(line for line in reversed(lines) if line.strip())))
    return "\n".join(summary)


def _clip_line(line: str) -> str:
    line = line.strip()
    if len(line) <= MAX_SUMMARY_LINE_CHARS:
        return line
    return line[: MAX_SUMMARY_LINE_CHARS - 3] + "..."


def sandbox_capabilities() -> dict[str, Any]:
    """Say how this machine confines snippets (probed once, by running one in namespaces).

    Returns:
        ``namespaces`` (bool) and a description of how ``network``, ``filesystem`` and
        ``processes`` are confined, plus ``detail``: why namespaces are unavailable, if they are.
        Logs a warning (once) when only the fallback is available.
    """
    with _PROBE_LOCK:  # concurrent first calls wait for one probe
        return dict(_probe())


@functools.cache
def _probe() -> dict[str, Any]:
    from goalgraph.spec import PythonToolSpec

    probe = run_python("print(6 * 7)", PythonToolSpec(timeout_s=30, cpu_s=10), isolate=True)
    if probe.ok and probe.output.strip() == "42":
        return {
            "namespaces": True,
            "network": "own network namespace (loopback only, down) and the audit hook",
            "filesystem": "private root: system folders read-only, "
            f"a {_WORKDIR_MB} MiB writable /tmp, nothing else of the host",
            "processes": f"own pid namespace, at most {_MAX_TASKS} processes and threads",
            "detail": "",
        }
    detail = f"{probe.reason}: {probe.output.strip()}".strip(": ")
    log.warning(
        "python sandbox: Linux namespaces are unavailable (%s); falling back to rlimits and an "
        "audit hook, which a determined snippet may get around",
        detail,
    )
    return {
        "namespaces": False,
        "network": "audit hook only",
        "filesystem": "the server user's permissions; the audit hook refuses writes outside the "
        "working folder",
        "processes": "the audit hook refuses starting processes",
        "detail": detail,
    }


def _launcher_config(root: str, limits: PythonToolSpec, isolate: bool) -> dict[str, Any]:
    """Return what the launcher needs, as JSON-ready data."""
    python = os.path.realpath(sys.executable)
    binds, links = _jail_layout(python)
    return {
        "isolate": isolate,
        "root": root,
        "python": python,
        "binds": binds,
        "links": links,
        "cpu_s": limits.cpu_s,
        "memory_mb": limits.memory_mb,
    }


def _jail_layout(python: str) -> tuple[list[str], dict[str, str]]:
    """Return the folders bound read-only into the sandbox's root, and the top-level symlinks."""
    binds: list[str] = []
    links: dict[str, str] = {}
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"):
        if os.path.islink(top):
            links[top] = os.readlink(top)
        elif os.path.isdir(top):
            binds.append(top)
    for extra in (sys.base_prefix, os.path.dirname(os.path.dirname(python))):
        path = os.path.realpath(extra)
        if not any(path == bound or path.startswith(bound + "/") for bound in binds):
            binds.append(path)
    return binds, links


@dataclass
class _Streams:
    """What came out of the launcher: the head of stdout, the tail of stderr."""

    stdout: bytearray
    stderr: bytearray
    dropped_stdout: int = 0
    dropped_stderr: int = 0
    timed_out: bool = False


def _exchange(process: subprocess.Popen[bytes], code: bytes, limits: PythonToolSpec) -> _Streams:
    """Feed ``code`` to stdin and collect bounded output until exit or the wall-clock limit."""
    assert process.stdin and process.stdout and process.stderr
    keep = 4 * limits.max_output_chars + 4  # bytes: a character is at most 4 in UTF-8
    streams = _Streams(bytearray(), bytearray())
    deadline = time.monotonic() + limits.timeout_s
    stdin, stdout = process.stdin.fileno(), process.stdout.fileno()
    pending = memoryview(code)
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(process.stderr.fileno(), selectors.EVENT_READ)
        os.set_blocking(stdin, False)
        selector.register(stdin, selectors.EVENT_WRITE)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                streams.timed_out = True
                return streams
            for key, _ in selector.select(remaining):
                if key.fd == stdin:
                    pending = _feed(stdin, pending)
                    if not pending:
                        selector.unregister(stdin)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                elif key.fd == stdout:
                    room = max(keep - len(streams.stdout), 0)
                    streams.stdout += chunk[:room]
                    streams.dropped_stdout += len(chunk) - len(chunk[:room])
                else:
                    streams.stderr += chunk
                    if len(streams.stderr) > keep:
                        streams.dropped_stderr += len(streams.stderr) - keep
                        del streams.stderr[:-keep]
    try:
        process.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        streams.timed_out = True
    return streams


def _feed(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes of ``pending``; return the rest (nothing if the reader left)."""
    try:
        return pending[os.write(fd, pending[:65536]) :]
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        return pending[:0]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the launcher's process group if the launcher still runs, and reap the launcher."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _combine(streams: _Streams, limit: int) -> str:
    """Return stdout then stderr within ``limit`` characters, saying where and how much was cut.

    When both do not fit, stderr keeps its end (where a traceback says what went wrong) and up to
    half of the room; stdout keeps its beginning.
    """
    out = streams.stdout.decode("utf-8", "replace")
    err = streams.stderr.decode("utf-8", "replace")
    err_room = min(len(err), max(limit - len(out), limit // 2))
    out_cut = max(len(out) - (limit - err_room), 0) + streams.dropped_stdout
    err_cut = len(err) - err_room + streams.dropped_stderr
    if out_cut:
        out = out[: limit - err_room] + f"\n[truncated: {out_cut} more characters]\n"
    if err_cut:
        err = f"[truncated: {err_cut} characters before this]\n" + err[len(err) - err_room :]
    if out and err and not out.endswith("\n"):
        out += "\n"
    return out + err


def _reason(
    returncode: int, timed_out: bool, stderr: bytearray, limits: PythonToolSpec
) -> str | None:
    """Return why the snippet failed in one line, or None when it succeeded."""
    if timed_out:
        return f"killed: exceeded the {limits.timeout_s:g} s time limit"
    if returncode == 0:
        return None
    if returncode < 0:
        return _signal_reason(-returncode, limits)
    kind = {code: kind for kind, code in _EXIT_CODES.items()}.get(returncode)
    if kind == "setup":
        lines = stderr.decode("utf-8", "replace").strip().splitlines() or ["no details"]
        return f"the sandbox could not be set up: {lines[-1].removeprefix(_SETUP_FAILED)}"
    if kind == "cpu":
        return f"killed: exceeded the {limits.cpu_s} s CPU time limit"
    if kind == "memory":
        return f"killed: exceeded the {limits.memory_mb} MiB memory limit (MemoryError)"
    if kind == "processes":
        return f"process limit reached (fork bomb?): at most {_MAX_TASKS} processes and threads"
    if kind == "file_size":
        return f"file size limit reached: files are limited to {_FILE_MB} MiB"
    if kind == "disk_full":
        return f"the sandbox's {_WORKDIR_MB} MiB working folder is full"
    if kind == "exception":
        return _EXCEPTION
    if kind in _REFUSALS:
        return _REFUSALS[kind]
    return f"the snippet exited with code {returncode}"


def _signal_reason(number: int, limits: PythonToolSpec) -> str:
    """Say why a process killed by signal ``number`` died."""
    if number == signal.SIGXCPU:
        return f"killed: exceeded the {limits.cpu_s} s CPU time limit"
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    if number == signal.SIGKILL:
        return f"killed by SIGKILL (the {limits.memory_mb} MiB memory limit?)"
    return f"killed by signal {name}"


# --- the launcher (this file run as a script) ---------------------------------------------------


def _launch(config: dict[str, Any]) -> NoReturn:
    """Set the sandbox up as ``config`` says and start the runner; never returns."""
    try:
        if config["isolate"]:
            _launch_isolated(config)
        else:
            _launch_plain(config)
    except Exception as exc:  # whatever fails, the snippet must not run unconfined
        print(f"{_SETUP_FAILED}{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    os._exit(_EXIT_CODES["setup"])


def _launch_isolated(config: dict[str, Any]) -> None:
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
    _unshare(flags)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    if not as_root:
        _build_root(config)
    alive_r, alive_w = os.pipe()  # the write end closes when the launcher dies
    child = os.fork()
    if child == 0:
        try:
            os.close(alive_w)
            _enter_root(config, alive_r)
        except BaseException as exc:
            print(f"{_SETUP_FAILED}{type(exc).__name__}: {exc}", file=sys.stderr)
            sys.stderr.flush()
            os._exit(_EXIT_CODES["setup"])
    os.close(alive_r)
    _relay_exit(child, config["cpu_s"])


def _build_root(config: dict[str, Any]) -> None:
    """Mount the sandbox's future root on ``config["root"]`` (still below the host's root)."""
    root = config["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=0755")
    for path in config["binds"]:
        target = root + path
        os.makedirs(target, exist_ok=True)
        _mount(path, target, None, _MS_BIND | _MS_REC)
    for path, target in config["links"].items():
        os.symlink(target, root + path)
    os.makedirs(root + "/dev")
    for name in _DEVICES:
        os.close(os.open(f"{root}/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(f"/dev/{name}", f"{root}/dev/{name}", None, _MS_BIND)
    for name, target in {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0"}.items():
        os.symlink(target, f"{root}/dev/{name}")
    os.symlink("/proc/self/fd/1", f"{root}/dev/stdout")
    os.symlink("/proc/self/fd/2", f"{root}/dev/stderr")
    os.makedirs(root + "/tmp")
    _mount(
        "tmpfs", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={_WORKDIR_MB}m,mode=1777"
    )
    os.makedirs(root + "/proc")


def _enter_root(config: dict[str, Any], launcher_alive: int) -> NoReturn:
    """As pid 1 of the new pid namespace: mount /proc, switch root, limit, run the runner."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher's death ends the namespace
    os.set_blocking(launcher_alive, False)
    try:
        if not os.read(launcher_alive, 1):  # end of file: it died before the line above
            os._exit(_EXIT_CODES["setup"])
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
    _apply_limits(config, tasks=_MAX_TASKS)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _exec_runner(config["python"], "jail", "/tmp")


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


def _launch_plain(config: dict[str, Any]) -> None:
    """The fallback without namespaces: limits, then the runner with its strict audit hook."""
    _set_limit(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC counts every task of this user, so allow the current count plus the quota.
    _apply_limits(config, tasks=_count_tasks(os.getuid()) + _MAX_TASKS)
    os.chdir(config["root"])
    _exec_runner(config["python"], "strict", config["root"])


def _apply_limits(config: dict[str, Any], *, tasks: int) -> None:
    """Set the snippet's resource limits (hard limits too, so it cannot raise them)."""
    mib = 1024 * 1024
    cpu = int(config["cpu_s"])
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 1)  # SIGXCPU first, SIGKILL a second later
    _set_limit(resource.RLIMIT_AS, int(config["memory_mb"]) * mib)
    _set_limit(resource.RLIMIT_FSIZE, _FILE_MB * mib)
    _set_limit(resource.RLIMIT_NOFILE, _OPEN_FILES)
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


def _exec_runner(python: str, mode: str, home: str) -> NoReturn:
    """Replace this process with a fresh interpreter running the snippet from stdin."""
    argv = [python, "-I", "-S", "-B", "-X", "utf8", "-c", _RUNNER, mode]
    argv.append(json.dumps({"exit_codes": _EXIT_CODES, "refusals": _REFUSALS}))
    os.execve(python, argv, {**_BASE_ENV, "HOME": home, "TMPDIR": home})


# --- Linux system calls through ctypes (the launcher only) -------------------------------------


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


# --- the runner: a fresh interpreter that runs the snippet ---------------------------------------

# Passed with -c, so it is plain source. It reads the snippet from stdin, installs the audit hook
# and runs the snippet as a fresh __main__ module; argv: the mode ("jail": namespaces confine it;
# "strict": the hook also refuses processes and writes), and JSON of the exit codes and refusals.
_RUNNER = r"""
import sys


def _make_hook(strict, spawned, workdir, refusals, calls, flags):
    # Everything the hook uses is bound here: a snippet can reach neither its closure nor,
    # through it, module globals or builtins it could replace. Only ``spawned`` (a one-item list
    # saying whether the snippet started a process) is mutable, and it only words the reason.
    realpath, join, getcwd, getpid, fsdecode, is_a = calls
    network = frozenset({
        "socket.bind", "socket.connect", "socket.getaddrinfo", "socket.gethostbyaddr",
        "socket.gethostbyname", "socket.getnameinfo", "socket.sendmsg", "socket.sendto",
    })
    introspection = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
    spawning = frozenset({
        "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
        "subprocess.Popen",
    })
    path_events = (
        ("os.chmod", (0,)), ("os.chown", (0,)), ("os.link", (1,)), ("os.mkdir", (0,)),
        ("os.remove", (0,)), ("os.removexattr", (0,)), ("os.rename", (0, 1)),
        ("os.rmdir", (0,)), ("os.setxattr", (0,)), ("os.symlink", (1,)),
        ("os.truncate", (0,)), ("os.utime", (0,)),
    )
    allowed = (workdir, "/dev/null")

    def resolve(path):
        try:
            return realpath(join(getcwd(), fsdecode(path)))
        except (OSError, TypeError, ValueError):
            return "/"

    def outside(path):
        if is_a(path, int):
            return False
        real = resolve(path)
        return real not in allowed and not real.startswith(workdir + "/")

    def foreign_process(path):
        parts = ("" if is_a(path, int) else resolve(path)).split("/") + ["", "", ""]
        return parts[1] == "proc" and parts[2].isdigit() and parts[2] != "%d" % getpid()

    def hook(event, args):
        if event in network:
            raise PermissionError(1, refusals["network"])
        if event.startswith("ctypes.") or (
            event == "import" and args[0].partition(".")[0] in ("ctypes", "_ctypes")
        ):
            raise PermissionError(1, refusals["ctypes"])
        if event in introspection or (event == "object.__setattr__" and args[1] == "__code__"):
            raise PermissionError(1, refusals["introspection"])
        if event in spawning:
            if strict:
                raise PermissionError(1, refusals["spawn"])
            spawned[0] = True
        if not strict:
            return
        if event == "open" and is_a(args[2], int) and args[2] & flags and outside(args[0]):
            raise PermissionError(1, refusals["write"])
        if event == "open" and foreign_process(args[0]):
            raise PermissionError(1, refusals["proc"])
        for name, positions in path_events:
            if event == name:
                for position in positions:
                    if outside(args[position]):
                        raise PermissionError(1, refusals["write"])

    return hook


def _kind(exc, refusals, spawned):
    import errno

    messages = {text: kind for kind, text in refusals.items()}
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, PermissionError) and exc.strerror in messages:
            return messages[exc.strerror]
        if isinstance(exc, MemoryError):
            return "memory"
        if isinstance(exc, OSError) and exc.errno == errno.EAGAIN and spawned[0]:
            return "processes"  # fork() reports RLIMIT_NPROC this way
        if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
            return "processes"
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return "write"
        if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            return "file_size"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return "disk_full"
        reason = getattr(exc, "reason", None)  # urllib's URLError keeps its cause there
        exc = reason if isinstance(reason, BaseException) else exc.__cause__ or exc.__context__
    return "exception"


def _main():
    import json
    import os
    import signal
    import traceback
    import types

    mode, settings = sys.argv[1], json.loads(sys.argv[2])
    codes, refusals = settings["exit_codes"], settings["refusals"]
    code = sys.stdin.buffer.read().decode("utf-8", "replace")

    def on_cpu_limit(number, frame):
        os._exit(codes["cpu"])

    # Also needed because pid 1 of a namespace ignores a SIGXCPU that has no handler.
    signal.signal(signal.SIGXCPU, on_cpu_limit)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    spawned = [False]
    calls = (os.path.realpath, os.path.join, os.getcwd, os.getpid, os.fsdecode, isinstance)
    workdir = os.path.realpath(os.getcwd())
    strict = mode == "strict"
    sys.addaudithook(_make_hook(strict, spawned, workdir, dict(refusals), calls, write_flags))
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    sys.argv = [""]
    try:
        exec(compile(code, "<snippet>", "exec"), module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        kind = _kind(exc, refusals, spawned)
        if kind == "memory":
            module.__dict__.clear()  # free the snippet's data so that the traceback can print
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        except MemoryError:
            os.write(2, b"MemoryError\n")
        sys.exit(codes[kind])


_main()
"""


if __name__ == "__main__":
    _launch(json.loads(sys.argv[1]))
