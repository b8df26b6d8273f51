"""``benchmarks/serve_load.py --quick`` runs end to end: no task lost or cross-wired."""

from __future__ import annotations

import pytest
from helpers import load_benchmark


@pytest.mark.timeout(300)
def test_serve_load_quick(capsys):
    serve_load = load_benchmark("serve_load")
    assert serve_load.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "cross-wired" in out and "SIGKILL" in out
