"""The tool-overhead benchmark runs end to end in --quick mode (no timing thresholds).

It starts goalgraph's own MCP server (once per variant family) and runs scripted agents over it.
"""

from __future__ import annotations

import math

import pytest
from helpers import load_benchmark

VARIANTS = ["direct", "adapter", "toolbox", "agent-sqlite", "agent-memory", "agent-inprocess"]

pytestmark = pytest.mark.timeout(120)


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_quick_benchmark_reports_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("tool_overhead")
    result = bench.main(["--quick"])
    options = result["options"]
    assert options["calls"] >= 2 and options["runs"] >= 1
    rows = result["results"]
    assert [row["variant"] for row in rows] == VARIANTS
    for row in rows:
        assert len(row["per_call_ms"]) == options["runs"]
        assert all(_positive(x) for x in row["per_call_ms"]), row
        assert _positive(row["per_call_ms_median"]) and _positive(row["per_call_ms_p90"])
        assert _positive(row["ratio_vs_direct"])
        assert result["ratios"][row["variant"]] == row["ratio_vs_direct"]
        if row["variant"].startswith("agent"):
            assert row["run_ms_median"] > 0 and row["empty_run_ms_median"] > 0
    assert result["ratios"]["direct"] == 1.0
    printed = capsys.readouterr().out
    assert "ms/call median" in printed and result["summary"] in printed
    for variant in VARIANTS:
        assert variant in printed
