"""benchmarks/bfcl.py --merge: modes run separately combine into one results file."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import load_benchmark

OPTIONS = {"data": "d", "categories": ["irrelevance"], "model": "smollm2", "limit": 2, "seed": 0}


def _record(mode: str, ident: str, ok: bool) -> dict[str, Any]:
    kind = None if ok else "irrelevance_called"
    return {"id": ident, "category": "irrelevance", "mode": mode, "ok": ok, "kind": kind,
            "parsable": True, "hit_token_limit": False, "seconds": 1.0}  # fmt: skip


def _result(modes: list[str], ok: bool, command: str) -> dict[str, Any]:
    items = [_record(m, i, ok) for m in modes for i in ("irrelevance_1", "irrelevance_2")]
    return {
        "options": {**OPTIONS, "modes": modes},
        "items": items,
        "runs": [{"modes": modes, "command": command, "when": "now"}],
    }


def test_new_modes_replace_their_rows_and_keep_the_others() -> None:
    bfcl = load_benchmark("bfcl")
    earlier = _result(["constrained", "grounded", "plain"], ok=False, command="first")
    new = _result(["grounded"], ok=True, command="second")
    new["options"]["categories"] = ("irrelevance",)  # as run_bfcl returns it, before JSON
    merged = bfcl.merged(earlier, new)
    assert merged["options"]["modes"] == ["constrained", "grounded", "plain"]
    assert [r["mode"] for r in merged["items"]] == ["constrained"] * 2 + ["grounded"] * 2 + [
        "plain"
    ] * 2
    accuracy = {m: s["categories"]["irrelevance"]["accuracy"] for m, s in merged["summary"].items()}
    assert accuracy == {"constrained": 0.0, "grounded": 1.0, "plain": 0.0}
    assert [r["command"] for r in merged["runs"]] == ["first", "second"]


def test_a_run_fully_replaced_leaves_the_run_list() -> None:
    bfcl = load_benchmark("bfcl")
    earlier = _result(["gated"], ok=False, command="old gated")
    merged = bfcl.merged(earlier, _result(["gated"], ok=True, command="new gated"))
    assert [r["command"] for r in merged["runs"]] == ["new gated"]


def test_runs_with_other_options_do_not_merge() -> None:
    bfcl = load_benchmark("bfcl")
    earlier = _result(["plain"], ok=False, command="first")
    earlier["options"]["seed"] = 1
    with pytest.raises(SystemExit, match="seed"):
        bfcl.merged(earlier, _result(["grounded"], ok=True, command="second"))
