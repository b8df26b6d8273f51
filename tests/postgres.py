"""A throwaway PostgreSQL server for tests, on 127.0.0.1 and a free port, in a temporary folder.

The server binaries are found under ``/usr/lib/postgresql/*/bin`` or on ``PATH``; when absent and
we are root, Debian's ``postgresql`` package is installed with apt (``apt-get update`` first only
if the install fails without it). ``initdb`` refuses to run as root, so as root the cluster is
created and run as the ``postgres`` user (which the package creates) or else ``nobody``.

Example:
    >>> with postgres_server() as server:                      # doctest: +SKIP
    ...     print(server.url)
    postgresql://goalgraph:...@127.0.0.1:41234/goalgraph
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from helpers import free_port

__all__ = [
    "PostgresServer",
    "PostgresUnavailable",
    "find_bin_dir",
    "install_postgres",
    "postgres_server",
    "start_postgres",
]

USER = "goalgraph"
"""The database superuser, and the database the URL names."""
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
"""Test settings: durability off (the cluster is thrown away), startup and commits fast."""


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, and they cannot be installed here."""


@dataclass
class PostgresServer:
    """A running test server; ``stop`` it (``postgres_server`` does) when done.

    Attributes:
        bin_dir: The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.
        root: The temporary folder: the cluster in ``data``, the unix socket, the log.
        port: The TCP port on 127.0.0.1.
        password: The password of user ``goalgraph`` (host connections need it).
        os_user: The account the server runs as, or ``None`` for the current one.
        timings: Seconds spent in each provisioning stage (``install``, ``initdb``, ``start``).
    """

    bin_dir: Path
    root: Path
    port: int
    password: str
    os_user: str | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the URL of database ``goalgraph`` as user ``goalgraph``."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{USER}"

    @property
    def data_dir(self) -> Path:
        """Return the cluster's folder."""
        return self.root / "data"

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``) and delete its folder."""
        _run(self, "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bin_dir() -> Path | None:
    """Return the newest PostgreSQL server ``bin`` folder (Debian layout, then ``PATH``)."""
    debian = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda d: _version(d.parent.name),
        reverse=True,
    )
    on_path = shutil.which("initdb")
    candidates = [*debian, *([Path(on_path).resolve().parent] if on_path else [])]
    return next((d for d in candidates if (d / "pg_ctl").exists()), None)


def install_postgres() -> Path:
    """Install Debian's ``postgresql`` package with apt and return its ``bin`` folder.

    Raises:
        PostgresUnavailable: if we are not root, apt is missing, or the install fails.
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries (initdb, pg_ctl) and no way to install them: "
            "run `apt-get install postgresql` (or put initdb on PATH)"
        )
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"apt-get install postgresql failed: {done.stderr[-2000:]}")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("apt installed postgresql but no initdb was found")
    return bin_dir


def start_postgres() -> PostgresServer:
    """Find or install PostgreSQL, create a cluster in a new temporary folder and start it."""
    started = time.monotonic()
    bin_dir = find_bin_dir()
    timings: dict[str, float] = {}
    if bin_dir is None:
        bin_dir = install_postgres()
        timings["install"] = time.monotonic() - started
    os_user = _server_account()
    server = PostgresServer(
        bin_dir=bin_dir,
        root=_make_root(os_user),
        port=free_port(),
        password=secrets.token_hex(8),
        os_user=os_user,
        timings=timings,
    )
    try:
        _timed(server, "initdb", _initdb)
        _timed(server, "start", _start)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Run a test server for the ``with`` block, then stop it and delete its files."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def _timed(server: PostgresServer, stage: str, step: Callable[[PostgresServer], None]) -> None:
    began = time.monotonic()
    step(server)
    server.timings[stage] = time.monotonic() - began


def _initdb(server: PostgresServer) -> None:
    pwfile = server.root / "pwfile"
    pwfile.write_text(server.password + "\n")
    _chown(pwfile, server.os_user)
    _run(
        server,
        "initdb",
        "--pgdata",
        str(server.data_dir),
        "--username",
        USER,
        "--pwfile",
        str(pwfile),
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--no-sync",
        "--no-instructions",
    )
    pwfile.unlink()


def _start(server: PostgresServer) -> None:
    options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.root} {SERVER_OPTIONS}"
    log = server.root / "server.log"
    _run(server, "pg_ctl", "start", "-D", str(server.data_dir), "-l", str(log), "-w", "-o", options)
    _run(server, "createdb", "-h", str(server.root), "-p", str(server.port), "-U", USER, USER)


def _run(server: PostgresServer, tool: str, *args: str, check: bool = True) -> None:
    """Run a PostgreSQL tool as the server's account; raise with its output if it fails."""
    account = pwd.getpwnam(server.os_user) if server.os_user else None
    done = subprocess.run(
        [str(server.bin_dir / tool), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=server.root if server.root.exists() else None,
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
    )
    if check and done.returncode != 0:
        raise PostgresUnavailable(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


def _server_account() -> str | None:
    """Return the account to run PostgreSQL as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable("running as root and there is no postgres or nobody account")


def _make_root(os_user: str | None) -> Path:
    # Short (unix socket paths are limited to ~100 bytes) and owned by the server's account.
    root = Path(tempfile.mkdtemp(prefix="gg-pg-"))
    _chown(root, os_user)
    return root


def _chown(path: Path, os_user: str | None) -> None:
    if os_user:
        account = pwd.getpwnam(os_user)
        os.chown(path, account.pw_uid, account.pw_gid)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())
