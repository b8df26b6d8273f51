"""Run an untrusted Python snippet in a sandboxed subprocess (the builtin ``python`` tool).

Each call starts a launcher (``sandbox_launcher.py``, run as ``python -I -S``) that sets the
sandbox up and then starts a fresh interpreter, the runner (``sandbox_runner.py``), for the
snippet. The layers, strongest first:

* Namespaces (Linux 5.12+ on x86_64, aarch64 or riscv64, when unprivileged user namespaces
  work): the runner gets its own user, mount, UTS, network, pid and IPC namespaces. The network
  namespace has only a loopback device, and it is down. The private root holds only what the
  interpreter needs, read-only (``sandbox_jail``): the executable, the standard library, the
  folders of the libraries it loads, the time-zone database, a synthetic ``/etc``; plus a
  size-capped writable ``/tmp`` (the working folder) and a fresh ``/proc`` that shows only the
  sandbox's own processes. The host name is ``sandbox``. The runner holds no capabilities; a
  server running as root drops to ``nobody`` first, because the kernel never applies
  ``RLIMIT_NPROC`` to root.
* A seccomp filter (``sandbox_seccomp``, through libseccomp): io_uring, keyrings, ptrace, bpf,
  mounts, new namespaces and other kernel surface no snippet needs are refused.
* Resource limits: CPU seconds, address space per process, file size, open files, no core
  dumps, a cap on processes plus threads; the memory of all the sandbox's processes together
  (``sandbox_budget``); a wall-clock timeout that kills the launcher's process group, and with
  it the sandbox's pid namespace; at most ``max_concurrent`` sandboxes at once.
* An audit hook in the runner (defence in depth; it cannot be removed, but Python code is not a
  security boundary): refuses sockets that connect, bind or resolve names, ``ctypes``, and the
  introspection that could reach the hook.

Where namespaces are unavailable the tool refuses every call, unless the spec opts in with
``allow_unisolated``: then the unisolated fallback runs the snippet as the server's user with
the limits, the seccomp filter and a strict audit hook (no processes, no writes outside the
working folder, no other processes' /proc entries). A determined snippet can get around a hook
(low-level calls it does not see), so that mode is logged as a warning and the tool's
description says so.

A failure's reason is worded here from what the snippet cannot write: the exit code (which only
picks one of fixed sentences), the signal, the parent's own timers and memory sums, and the
launcher's setup pipe, which is closed before the snippet starts. What the snippet printed is
only ever shown as its output.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from goalgraph.tools.sandbox_budget import MEMORY_POLL_S, SandboxSlots, sandbox_memory
from goalgraph.tools.sandbox_jail import HOST_NAME, jail_layout, synthetic_etc
from goalgraph.tools.sandbox_runner import EXIT_CODES, REFUSALS, RUNNER
from goalgraph.tools.sandbox_seccomp import seccomp_rules, seccomp_support

if TYPE_CHECKING:
    from goalgraph.spec import PythonToolSpec

__all__ = [
    "MAX_CODE_CHARS",
    "SandboxResult",
    "failure_summary",
    "python_tool_description",
    "run_python",
    "sandbox_capabilities",
]

log = logging.getLogger(__name__)

MAX_CODE_CHARS = 100_000
"""Longest snippet accepted; longer code is refused without starting a process."""
MAX_SUMMARY_LINE_CHARS = 120
"""Longest line (the exception, the failing source line) that ``failure_summary`` shows."""
SNIPPET_OUTPUT = "snippet output: "
"""What ``failure_summary`` puts before a line the snippet printed, to set it apart from the
tool's own reason."""

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
_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_launcher.py")
_SLOTS = SandboxSlots()
_DESCRIPTION = (
    "Run a short Python 3 snippet in a sandbox (no network, no files outside a temporary "
    "folder, time and memory limits). Print what you need; returns stdout and stderr, and "
    "the value of a last bare expression, as a REPL shows it."
)
_UNISOLATED_DESCRIPTION = (
    "Run a short Python 3 snippet, UNISOLATED: this machine cannot create Linux namespaces, so "
    "it runs as the server's user with only time and memory limits, a seccomp filter and an "
    "audit hook (no network, no processes, no writes outside a temporary folder, all of which a "
    "determined snippet can get around). Print what you need; returns stdout and stderr, and "
    "the value of a last bare expression, as a REPL shows it."
)


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
    """One line saying why it failed, e.g. ``killed: exceeded the 10 s time limit``; one of a
    fixed set of sentences, never text the snippet wrote."""
    elapsed_s: float
    """Wall-clock seconds the call took."""


# --- the parent side ----------------------------------------------------------------------------


def run_python(code: str, limits: PythonToolSpec, *, isolate: bool | None = None) -> SandboxResult:
    """Run ``code`` in a fresh sandboxed interpreter and return its output.

    Args:
        code: Python 3 source; it runs as ``__main__`` with the working folder as cwd and
            stdin at end of file.
        limits: Time, CPU, memory, output and concurrency limits, and whether the unisolated
            fallback may be used.
        isolate: Use namespaces (True); use the unisolated fallback (False, an explicit opt-in
            like ``limits.allow_unisolated``); or namespaces when this machine supports them,
            else the fallback if ``limits`` allows it, else refuse (None, the default).

    Returns:
        The outcome; failures (including the sandbox's refusals) have ``ok=False`` and a reason.
    """
    if len(code) > MAX_CODE_CHARS:
        refusal = f"refused: the code has {len(code)} characters; the limit is {MAX_CODE_CHARS}"
        return SandboxResult(False, "", None, refusal, 0.0)
    capabilities = sandbox_capabilities()
    if isolate is None:
        if capabilities["namespaces"]:
            isolate = True
        elif limits.allow_unisolated:
            isolate = False
            _warn_unisolated()
        else:
            return SandboxResult(False, "", None, _unavailable(capabilities), 0.0)
    started = time.monotonic()
    with _SLOTS.slot(limits.max_concurrent, limits.timeout_s) as got:
        if not got:
            busy = (
                f"refused: {limits.max_concurrent} python snippets are already running (the "
                f"limit, tools.python.max_concurrent) and none finished within "
                f"{limits.timeout_s:g} s; try again later"
            )
            return SandboxResult(False, "", None, busy, time.monotonic() - started)
        result = _run(code, limits, isolate=isolate, seccomp=bool(capabilities["seccomp"]))
    return SandboxResult(
        result.ok, result.output, result.exit_code, result.reason, time.monotonic() - started
    )


def python_tool_description(limits: PythonToolSpec) -> str:
    """Describe the python tool truthfully for ``limits``: unisolated when it would run so.

    Only when ``limits.allow_unisolated`` does this probe the machine (and warn when the
    fallback is what snippets will get); otherwise snippets run in namespaces or not at all.
    """
    if limits.allow_unisolated and not sandbox_capabilities()["namespaces"]:
        _warn_unisolated()
        return _UNISOLATED_DESCRIPTION
    return _DESCRIPTION


def failure_summary(result: SandboxResult, code: str) -> str:
    """Say in at most three short lines why a snippet failed, for a model to fix it.

    A small model reads this, so instead of the whole traceback it gets the reason (always first,
    and never text the snippet wrote), then, marked with ``SNIPPET_OUTPUT``, the traceback's
    exception line, and the line of the snippet that failed (the last frame in the snippet, taken
    from ``code``), each cut to ``MAX_SUMMARY_LINE_CHARS``. A failure without a traceback, such
    as a timeout, keeps the last line of its output, marked, when there is one.

    Example:
        ``the snippet raised an exception`` / ``snippet output: NameError: name 'python' is not
        defined`` / ``at line 1: python``

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
    summary = [result.reason or "failed"]
    if exception:
        summary.append(SNIPPET_OUTPUT + _clip_line(exception))
    numbers = [_SNIPPET_FRAME.match(lines[at]) for at in frames]
    found = [int(match[1]) for match in numbers if match]
    source = code.splitlines()
    if found and 0 < found[-1] <= len(source):
        summary.append(f"at line {found[-1]}: {_clip_line(source[found[-1] - 1].strip())}")
    if not frames and not exception and result.output.strip():
        last = next(line for line in reversed(lines) if line.strip())
        summary.append(SNIPPET_OUTPUT + _clip_line(last))
    return "\n".join(summary)


def _clip_line(line: str) -> str:
    line = line.strip()
    if len(line) <= MAX_SUMMARY_LINE_CHARS:
        return line
    return line[: MAX_SUMMARY_LINE_CHARS - 3] + "..."


def sandbox_capabilities() -> dict[str, Any]:
    """Say how this machine confines snippets (probed once, by running one in namespaces).

    Returns:
        ``namespaces`` and ``seccomp`` (bools), a description of how ``network``,
        ``filesystem``, ``processes`` and ``memory`` are confined, ``detail``: why namespaces
        are unavailable, and ``seccomp_detail``: why the seccomp filter is, if they are. Logs
        a warning (once) for each that is missing.
    """
    with _PROBE_LOCK:  # concurrent first calls wait for one probe
        return dict(_probe())


@functools.cache
def _probe() -> dict[str, Any]:
    from goalgraph.spec import PythonToolSpec

    limits = PythonToolSpec(timeout_s=30, cpu_s=10)

    def attempt(isolate: bool, seccomp: bool) -> str:
        """Run a tiny snippet; return "" when it worked, else why not."""
        result = _run("print(6 * 7)", limits, isolate=isolate, seccomp=seccomp)
        if result.ok and result.output.strip() == "42":
            return ""
        return f"{result.reason}: {result.output.strip()}".strip(": ")

    module, seccomp_detail = seccomp_support()
    seccomp = module is not None
    detail = attempt(True, seccomp)
    if detail and seccomp and not attempt(True, False):
        seccomp, seccomp_detail, detail = False, f"the filter did not load ({detail})", ""
    if detail and seccomp:
        failed = attempt(False, True)
        if failed:
            seccomp, seccomp_detail = False, f"the filter did not load ({failed})"
    if not seccomp:
        log.warning(
            "python sandbox: no seccomp filter (%s); snippets run without it", seccomp_detail
        )
    memory = f"the memory of all the sandbox's processes together, summed every {MEMORY_POLL_S:g} s"
    filtered = " and a seccomp filter" if seccomp else ""
    if not detail:
        return {
            "namespaces": True,
            "seccomp": seccomp,
            "network": "own network namespace (loopback only, down) and the audit hook",
            "filesystem": "private root: the interpreter, its standard library and libraries "
            f"read-only, a synthetic /etc, a {_WORKDIR_MB} MiB writable /tmp, nothing else of "
            "the host",
            "processes": f"own pid namespace{filtered}, at most {_MAX_TASKS} processes and threads",
            "memory": memory,
            "detail": "",
            "seccomp_detail": seccomp_detail,
        }
    log.warning(
        "python sandbox: Linux namespaces are unavailable (%s); the python tool refuses every "
        "call unless tools.python.allow_unisolated opts in to a fallback that a determined "
        "snippet can escape",
        detail,
    )
    return {
        "namespaces": False,
        "seccomp": seccomp,
        "network": f"audit hook{filtered}",
        "filesystem": "the server user's permissions; the audit hook refuses writes outside the "
        "working folder",
        "processes": f"the audit hook refuses starting processes{filtered}",
        "memory": memory,
        "detail": detail,
        "seccomp_detail": seccomp_detail,
    }


def _unavailable(capabilities: dict[str, Any]) -> str:
    """Say why the python tool refuses without namespaces, and how to opt in."""
    return (
        "refused: this machine cannot isolate python snippets (Linux namespaces are "
        f"unavailable: {capabilities['detail'] or 'unknown'}); set tools.python.allow_unisolated"
        " to run them anyway as the server's user with only limits, a seccomp filter and an "
        "audit hook, which a determined snippet can escape"
    )


@functools.cache
def _warn_unisolated() -> None:
    log.warning(
        "python sandbox: snippets run UNISOLATED (tools.python.allow_unisolated): as the "
        "server's user, with only resource limits, a seccomp filter and an audit hook; a "
        "determined snippet can read and write what the server's user can"
    )


def _run(code: str, limits: PythonToolSpec, *, isolate: bool, seccomp: bool) -> SandboxResult:
    """Start the launcher for ``code`` and collect what happens, within every limit."""
    started = time.monotonic()
    setup_read, setup_write = os.pipe()
    try:
        with tempfile.TemporaryDirectory(prefix="goalgraph-py-", ignore_cleanup_errors=True) as tmp:
            if isolate:
                os.chmod(tmp, 0o755)  # the launcher may have dropped to nobody when it mounts
            config = _launcher_config(tmp, limits, isolate, seccomp, setup_write)
            command = [sys.executable, "-I", "-S", "-B", "-X", "utf8", _LAUNCHER]
            with subprocess.Popen(
                [*command, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=tmp,
                env={**_BASE_ENV, "HOME": tmp, "TMPDIR": tmp},
                start_new_session=True,  # its own process group, killed as a whole on timeout
                pass_fds=(setup_write,),
            ) as process:
                os.close(setup_write)
                setup_write = -1
                try:
                    source = code.encode("utf-8", "replace")
                    streams = _exchange(process, source, limits, setup_read)
                finally:
                    _kill_group(process)
    finally:
        for fd in (setup_read, setup_write):
            if fd >= 0:
                os.close(fd)
    returncode = process.returncode
    output = _combine(streams, limits.max_output_chars)
    reason = _reason(returncode, streams, limits)
    return SandboxResult(reason is None, output, returncode, reason, time.monotonic() - started)


def _launcher_config(
    root: str, limits: PythonToolSpec, isolate: bool, seccomp: bool, setup_fd: int
) -> dict[str, Any]:
    """Return everything the launcher needs, as JSON-ready data."""
    python = os.path.realpath(sys.executable)
    config: dict[str, Any] = {
        "isolate": isolate,
        "root": root,
        "python": python,
        "env": dict(_BASE_ENV),
        "cpu_s": limits.cpu_s,
        "memory_mb": limits.memory_mb,
        "max_tasks": _MAX_TASKS,
        "file_mb": _FILE_MB,
        "open_files": _OPEN_FILES,
        "exit_codes": EXIT_CODES,
        "refusals": REFUSALS,
        "runner": RUNNER,
        "setup_fd": setup_fd,
        "seccomp": None,
    }
    if seccomp:
        config["seccomp"] = {"module": seccomp_support()[0], "rules": seccomp_rules()}
    if isolate:
        layout = jail_layout(python)
        uid, gid = (_NOBODY, _NOBODY) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
        config["env"]["LD_LIBRARY_PATH"] = layout.library_path
        config |= {
            "binds": list(layout.binds),
            "masks": list(layout.masks),
            "links": layout.links,
            "etc": synthetic_etc(uid, gid),
            "hostname": HOST_NAME,
            "devices": list(_DEVICES),
            "workdir_mb": _WORKDIR_MB,
        }
    return config


@dataclass
class _Streams:
    """What came out of the launcher: the head of stdout, the tail of stderr, the setup pipe."""

    stdout: bytearray
    stderr: bytearray
    setup: bytearray
    dropped_stdout: int = 0
    dropped_stderr: int = 0
    timed_out: bool = False
    over_memory: bool = False


def _exchange(
    process: subprocess.Popen[bytes], code: bytes, limits: PythonToolSpec, setup_fd: int
) -> _Streams:
    """Feed ``code`` to stdin and collect bounded output until exit or a limit is passed.

    Every ``MEMORY_POLL_S`` it also sums the memory of the launcher's process tree, and stops
    when that passes ``limits.memory_mb``.
    """
    assert process.stdin and process.stdout and process.stderr
    keep = 4 * limits.max_output_chars + 4  # bytes: a character is at most 4 in UTF-8
    streams = _Streams(bytearray(), bytearray(), bytearray())
    deadline = time.monotonic() + limits.timeout_s
    budget = limits.memory_mb * 1024 * 1024
    stdin, stdout, stderr = process.stdin.fileno(), process.stdout.fileno(), process.stderr.fileno()
    pending = memoryview(code)

    def over_a_limit() -> bool:
        """Check the clock and the memory sum; say whether the sandbox must stop."""
        streams.timed_out = time.monotonic() >= deadline
        streams.over_memory = not streams.timed_out and sandbox_memory(process.pid) > budget
        return streams.timed_out or streams.over_memory

    with selectors.DefaultSelector() as selector:
        for fd in (stdout, stderr, setup_fd):
            selector.register(fd, selectors.EVENT_READ)
        os.set_blocking(stdin, False)
        selector.register(stdin, selectors.EVENT_WRITE)
        while selector.get_map():
            if over_a_limit():
                return streams
            wait = min(max(deadline - time.monotonic(), 0), MEMORY_POLL_S)
            for key, _ in selector.select(wait):
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
                elif key.fd == setup_fd:
                    streams.setup += chunk[: max(4096 - len(streams.setup), 0)]
                else:
                    streams.stderr += chunk
                    if len(streams.stderr) > keep:
                        streams.dropped_stderr += len(streams.stderr) - keep
                        del streams.stderr[:-keep]
    while process.poll() is None:  # it closed its output but still runs
        if over_a_limit():
            return streams
        time.sleep(MEMORY_POLL_S)
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


def _reason(returncode: int, streams: _Streams, limits: PythonToolSpec) -> str | None:
    """Return why the snippet failed in one line, or None when it succeeded.

    Only trusted facts choose it: the parent's own timers and memory sums, the launcher's setup
    pipe, the signal, and the exit code (which picks one of the fixed sentences below).
    """
    if streams.over_memory:
        return (
            f"killed: the sandbox's processes together used more than the {limits.memory_mb} MiB "
            "memory limit"
        )
    if streams.timed_out:
        return f"killed: exceeded the {limits.timeout_s:g} s time limit"
    setup = streams.setup.decode("utf-8", "replace").strip().splitlines()
    if setup:
        return f"the sandbox could not be set up: {setup[-1].removeprefix(_SETUP_FAILED)}"
    if returncode == 0:
        return None
    if returncode < 0:
        return _signal_reason(-returncode, limits)
    kind = {code: kind for kind, code in EXIT_CODES.items()}.get(returncode)
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
    if kind in REFUSALS:
        return REFUSALS[kind]
    return f"the snippet exited with code {returncode}"


def _signal_reason(number: int, limits: PythonToolSpec) -> str:
    """Say why a process killed by signal ``number`` died."""
    if number == signal.SIGXCPU:
        return f"killed: exceeded the {limits.cpu_s} s CPU time limit"
    name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
    if number == signal.SIGKILL:
        return f"killed by SIGKILL (the {limits.memory_mb} MiB memory limit?)"
    return f"killed by signal {name}"
