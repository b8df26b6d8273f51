"""The adversarial safety suite (benchmarks/safety_suite.py) passes case by case, in every class."""

from __future__ import annotations

import pytest
from helpers import load_benchmark


@pytest.mark.timeout(600)
async def test_every_adversarial_case_gets_its_expected_verdict() -> None:
    suite = load_benchmark("safety_suite")
    assert len(suite.CASES) >= 90
    kinds = {case.kind for case in suite.CASES}
    assert kinds >= {"action", "escape", "observation", "race", "liveness", "deadline", "taint"}
    # Every hole of issue 16 has cases of its own.
    for group in range(1, 10):
        assert sum(case.group == group for case in suite.CASES) >= 3, group
    rows = await suite.run_suite(progress=False)
    assert len(rows) == len(suite.CASES)
    misses = [
        f"class {row.group}, {row.name}: expected {row.expected}, got {row.got}"
        for row in rows
        if not row.passed
    ]
    assert not misses, "\n".join(misses)
