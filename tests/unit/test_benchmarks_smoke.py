"""The step-overhead benchmark runs end to end in --quick mode (no timing thresholds)."""

from __future__ import annotations

import math

from helpers import load_benchmark


def test_quick_benchmark_reports_both_agents(capsys):
    bench = load_benchmark("step_overhead")
    result = bench.main(["--quick", "--no-progress"])
    rows = {(r["system"], r["checkpointer"]): r for r in result["results"]}
    assert set(rows) == {(s, m) for s in ("goalgraph", "react") for m in ("sqlite", "none")}
    for row in rows.values():
        assert row["per_step_ms_median"] > 0
        assert row["run_ms_median"] > 0
    assert math.isfinite(result["ratio"]) and result["ratio"] > 0
    assert math.isfinite(result["ratio_no_checkpointer"])
    # Each goalgraph step is think → safety_check → act → reflect; each ReAct step agent → tools.
    assert result["profile"]["goalgraph"]["nodes_per_step"] >= 4
    assert result["profile"]["react"]["nodes_per_step"] == 2
    printed = capsys.readouterr().out
    assert "ms/step median" in printed and result["summary"] in printed
