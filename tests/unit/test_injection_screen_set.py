"""The labelled injection set and its benchmark (benchmarks/injection_screen.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from helpers import load_benchmark


def test_the_labelled_set_is_large_enough_and_every_kind_is_in_both_splits() -> None:
    bench = load_benchmark("injection_screen")
    items = bench.load()
    labels = Counter(item.label for item in items)
    assert labels["injection"] >= 100 and labels["benign"] >= 100
    assert set(labels) == {"injection", "benign"}
    assert len({item.id for item in items}) == len(items)
    kinds = {(item.label, item.kind) for item in items}
    for label, kind in kinds:
        splits = {i.split for i in items if (i.label, i.kind) == (label, kind)}
        assert splits == {"tuning", "heldout"}, (label, kind)


def test_the_benchmark_reports_both_splits_and_keeps_the_screens_measured_level(
    tmp_path: Path,
) -> None:
    bench = load_benchmark("injection_screen")
    out = tmp_path / "screen.md"
    items = bench.main(["--out", str(out)])
    text = out.read_text(encoding="utf-8")
    assert "| tuning |" in text and "| heldout |" in text and "## Injections detected" in text

    def rate(split: str, label: str) -> float:
        chosen = [i for i in items if (i.split, i.label) == (split, label)]
        return sum(i.flagged for i in chosen) / len(chosen)

    # Floors a few points under the figures in docs/tools-and-safety.md, so a regression shows here.
    assert rate("tuning", "injection") >= 0.95 and rate("heldout", "injection") >= 0.75
    assert rate("tuning", "benign") <= 0.06 and rate("heldout", "benign") <= 0.08
