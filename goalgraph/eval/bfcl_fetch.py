"""BFCL categories missing from the data folder, fetched as data from BFCL's PyPI wheel.

The shared data folder holds simple_python, multiple and irrelevance only. The parallel
categories ship in the wheel ``bfcl-eval==2026.3.23``; this module downloads that wheel with
``pip download --no-deps`` (never installing it: no code of it is run or imported), refuses it
unless its sha256 is the pinned one, and extracts only the category files into goalgraph's cache
(``<data dir>/cache/bfcl/<version>``, see ``goalgraph.paths``), laid out like BFCL's
``bfcl_eval/data``. The wheel is deleted afterwards; the extracted files are reused.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from goalgraph.eval.bfcl_data import PARALLEL_CATEGORIES, BfclDataError
from goalgraph.paths import data_dir
from goalgraph.wheels import WheelDownloadError, download_wheel

__all__ = [
    "FETCHABLE",
    "WHEEL_FILE",
    "WHEEL_PACKAGE",
    "WHEEL_SHA256",
    "WHEEL_VERSION",
    "cache_folder",
    "category_files",
    "extract_categories",
    "fetch_categories",
    "has_category",
    "resolve_data",
    "verify_wheel",
]

WHEEL_PACKAGE = "bfcl-eval"
"""The PyPI package whose wheel carries BFCL's data."""
WHEEL_VERSION = "2026.3.23"
"""The pinned version."""
WHEEL_FILE = "bfcl_eval-2026.3.23-py3-none-any.whl"
"""The wheel's file name."""
WHEEL_SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"
"""The sha256 of ``WHEEL_FILE``; any other wheel is refused."""
FETCHABLE = PARALLEL_CATEGORIES
"""The categories fetched from the wheel when the data folder lacks them."""
_PIP_TIMEOUT_S = 600

Downloader = Callable[[Path], Path]
"""Downloads the wheel into a folder and returns its path (``pip download`` by default)."""


def category_files(category: str) -> list[str]:
    """Return a category's files relative to a BFCL data folder (questions, accepted answers)."""
    name = f"BFCL_v4_{category}.json"
    return [name, f"possible_answer/{name}"]


def has_category(folder: Path, category: str) -> bool:
    """Tell whether ``folder`` holds every file of ``category``."""
    return all((folder / name).is_file() for name in category_files(category))


def cache_folder() -> Path:
    """Return where fetched categories are kept: ``<data dir>/cache/bfcl/<version>``."""
    return data_dir() / "cache" / "bfcl" / WHEEL_VERSION


def resolve_data(data: Path, category: str, *, cache: Path | None = None) -> Path:
    """Return the folder to read ``category`` from: ``data`` when it has the category, else the
    cache, fetched first if needed (only for ``FETCHABLE`` categories).

    Raises:
        BfclDataError: The wheel cannot be downloaded or is not the pinned one.
    """
    if category not in FETCHABLE or has_category(data, category):
        return data
    cache = cache or cache_folder()
    if not has_category(cache, category):
        fetch_categories([category], cache=cache)
    return cache


def fetch_categories(
    categories: Sequence[str], *, cache: Path | None = None, download: Downloader | None = None
) -> Path:
    """Download the pinned wheel, verify it and extract ``categories`` into ``cache``.

    Args:
        categories: Categories to extract (every one must be in ``FETCHABLE``).
        cache: The target folder (default ``cache_folder()``).
        download: Fetches the wheel into a folder (default: ``pip download``).

    Returns:
        ``cache``.

    Raises:
        BfclDataError: An unknown category, a failed download or a wheel whose sha256 is wrong.
    """
    unknown = [c for c in categories if c not in FETCHABLE]
    if unknown:
        raise BfclDataError(f"cannot fetch {unknown}; fetchable: {', '.join(FETCHABLE)}")
    cache = cache or cache_folder()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        wheel = (download or _pip_download)(Path(tmp))
        verify_wheel(wheel)
        extract_categories(wheel, categories, cache)
    return cache


def verify_wheel(wheel: Path) -> None:
    """Refuse ``wheel`` unless its sha256 is ``WHEEL_SHA256``.

    Raises:
        BfclDataError: Naming the file, the expected and the actual sha256.
    """
    digest = hashlib.sha256()
    with wheel.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != WHEEL_SHA256:
        raise BfclDataError(
            f"{wheel} is not the pinned {WHEEL_PACKAGE}=={WHEEL_VERSION} wheel: sha256 "
            f"{digest.hexdigest()}, expected {WHEEL_SHA256}; refusing to read it"
        )


def extract_categories(wheel: Path, categories: Sequence[str], folder: Path) -> None:
    """Copy ``categories``' files out of the wheel's ``bfcl_eval/data`` into ``folder``; each
    file is written beside its target first and moved into place whole.

    Raises:
        BfclDataError: A file is missing from the wheel.
    """
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
        for category in categories:
            for name in category_files(category):
                member = f"bfcl_eval/data/{name}"
                if member not in members:
                    raise BfclDataError(f"{wheel} has no {member}")
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                with archive.open(member) as source, partial.open("wb") as out:
                    shutil.copyfileobj(source, out)
                partial.replace(target)


def _pip_download(folder: Path) -> Path:
    """Download the pinned wheel (no dependencies, binary only) into ``folder``."""
    try:
        wheel = download_wheel(WHEEL_PACKAGE, WHEEL_VERSION, folder, timeout_s=_PIP_TIMEOUT_S)
    except WheelDownloadError as exc:
        raise BfclDataError(str(exc)) from None
    if wheel.name != WHEEL_FILE:
        raise BfclDataError(f"pip downloaded {wheel.name}, expected {WHEEL_FILE}")
    return wheel
