"""The adversarial safety suite (benchmarks/safety_suite.py) passes case by case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "safety_suite.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("safety_suite", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
async def test_every_adversarial_case_gets_its_expected_verdict() -> None:
    suite = _load()
    assert len(suite.CASES) >= 30
    kinds = {case.kind for case in suite.CASES}
    assert kinds == {"action", "escape", "observation"}
    rows = await suite.run_suite(progress=False)
    misses = [
        f"{row.name}: expected {row.expected}, got {row.got}" for row in rows if not row.passed
    ]
    assert not misses, "\n".join(misses)
