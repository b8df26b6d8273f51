"""The runner (the fresh interpreter that runs a snippet) and the codes it stops with.

``RUNNER`` is passed to ``python -I -S -B -X utf8 -c``, so it is plain source and imports only
the standard library. It reads the snippet from stdin, installs an audit hook and runs the
snippet as a fresh ``__main__`` module. Its argv: the mode (``jail``: namespaces confine it;
``strict``: the fallback without namespaces, where the hook also refuses processes, writes
outside the working folder and other processes' /proc entries), then JSON of ``EXIT_CODES`` and
``REFUSALS``.

The exit code only picks one of the fixed sentences the parent words a failure with: a snippet
can pick a wrong one (``sys.exit(113)``), but never write the reason itself.
"""

from __future__ import annotations

__all__ = ["EXIT_CODES", "REFUSALS", "RUNNER"]

EXIT_CODES = {
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
"""Exit codes by which the runner and the launcher tell the parent why they stopped."""

REFUSALS = {
    "network": "network access is disabled in the sandbox",
    "ctypes": "ctypes is disabled in the sandbox",
    "introspection": "this introspection is disabled in the sandbox",
    "spawn": "starting processes is disabled in the sandbox",
    "write": "writing outside the sandbox's working folder is disabled",
    "proc": "reading other processes is disabled in the sandbox",
}
"""What the audit hook says when it refuses something (the runner keys its exit code on them)."""

RUNNER = r"""
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
        # sqlite3 opens (and creates) its file in C, past the "open" event; a URI names any path,
        # and a path-like object could name another path when sqlite3 asks it again.
        if event == "sqlite3.connect" and args[0] not in (":memory:", "", b":memory:", b""):
            if not is_a(args[0], (str, bytes)) or fsdecode(args[0]).startswith("file:"):
                raise PermissionError(1, refusals["write"])
            if outside(args[0]):
                raise PermissionError(1, refusals["write"])
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
    import ast
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
        # As a REPL does, show the value of a last bare expression ("sorted(words)"), unless it
        # is None: a snippet that forgets print() otherwise returns nothing.
        tree = compile(code, "<snippet>", "exec", ast.PyCF_ONLY_AST)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<snippet>", "exec"), module.__dict__)
        if last is not None:
            shown = ast.Expression(last.value)
            value = eval(compile(shown, "<snippet>", "eval"), module.__dict__)
            if value is not None:
                print(repr(value))
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
"""The runner's source (see the module docstring)."""
