"""Helpers shared by the benchmark scripts: percentiles, the environment, plain-text tables."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from goalgraph.eval.figures import percentile, text_table

__all__ = ["environment", "percentile", "stderr_progress", "text_table"]


def environment(packages: Sequence[str]) -> dict[str, Any]:
    """Return Python, platform, CPU count and the installed versions of ``packages``."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def stderr_progress(done: int, total: int, label: str, *, unit: str = "run") -> None:
    """Report ``done`` of ``total`` on stderr: one updating line on a terminal."""
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        text = f"\r  {unit} {done}/{total} ({label})".ljust(44)
        print(text, end=end, file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 10) == 0:
        print(f"  {unit} {done}/{total}", file=sys.stderr, flush=True)
