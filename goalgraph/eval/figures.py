"""Helpers for the printed figures of the evaluations and the benchmarks: percentiles and
plain-text tables."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "text_table"]


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``values``, linearly interpolated; NaN if empty."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def text_table(header: Sequence[str], body: Sequence[Sequence[str]], left: set[int]) -> list[str]:
    """Lay out rows in columns; columns in ``left`` are flush left, the others flush right."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, body)]
