"""Helpers shared by the benchmark scripts: percentiles, the environment, plain-text tables."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from goalgraph.eval.tables import text_table

__all__ = ["environment", "percentile", "stderr_progress", "text_table"]


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``, interpolating linearly."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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
