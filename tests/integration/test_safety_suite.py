"""The adversarial safety suite (benchmarks/safety_suite.py) passes case by case."""

from __future__ import annotations

import pytest
from helpers import load_benchmark


@pytest.mark.timeout(300)
async def test_every_adversarial_case_gets_its_expected_verdict() -> None:
    suite = load_benchmark("safety_suite")
    assert len(suite.CASES) >= 30
    kinds = {case.kind for case in suite.CASES}
    assert kinds == {"action", "escape", "observation"}
    rows = await suite.run_suite(progress=False)
    misses = [
        f"{row.name}: expected {row.expected}, got {row.got}" for row in rows if not row.passed
    ]
    assert not misses, "\n".join(misses)
