"""``llm_runtime.py --ladder``: the rule that picks a ladder model's settings, and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import load_benchmark

runs = load_benchmark("_ladder_runs")


def model_run(
    prefill: dict[tuple[str, int], float],
    decode: dict[tuple[str, int], float],
    *,
    same_outputs: int = 3,
) -> Any:
    """Return a ModelRun of qwen2.5-coder-0.5b with these speeds and bf16 agreement."""
    variants = [
        runs.Variant(dtype, threads, prefill[dtype, threads], decode[dtype, threads])
        for dtype in runs.DTYPES
        for threads in runs.THREADS
    ]
    fp32 = runs.Agreement("float32", [[1, 2, 3]] * 3, ["a", "b", "c"], 9, 9, 3)
    bf16 = runs.Agreement("bfloat16", [[1, 2, 3]] * 3, ["a", "b", "c"], 9, 9, same_outputs)
    if same_outputs < 3:
        bf16.differences.append("after 1 same tokens, fp32 `...12...` / bf16 `...14...`")
    return runs.ModelRun(
        name="qwen2.5-coder-0.5b",
        parameters=630_167_424,
        load_s={"float32": 1.0, "bfloat16": 3.0},
        variants=variants,
        agreement={"float32": fp32, "bfloat16": bf16},
    )


PREFILL = {("float32", 1): 40, ("float32", 2): 25, ("bfloat16", 1): 80, ("bfloat16", 2): 40}
DECODE = {("float32", 1): 2.5, ("float32", 2): 1.5, ("bfloat16", 1): 2.7, ("bfloat16", 2): 1.0}


def test_bf16_is_chosen_when_faster_at_one_stage_no_slower_at_the_other_and_alike() -> None:
    assert runs.choose_settings(model_run(PREFILL, DECODE))[:2] == ("bfloat16", 1)
    dtype, threads, why = runs.choose_settings(model_run(PREFILL, DECODE, same_outputs=2))
    assert (dtype, threads) == ("bfloat16", 1)
    assert why == "bf16 prefill 2.00x, decode 1.08x fp32; same output 2/3"


@pytest.mark.parametrize(
    ("change", "same_outputs"),
    [
        ({}, 1),  # Answers differ on two prompts out of three.
        ({("bfloat16", 1): 2.0, ("bfloat16", 2): 1.0}, 3),  # Decode slower than float32.
    ],
)
def test_fp32_is_kept_when_bf16_answers_otherwise_or_decodes_slower(
    change: dict[tuple[str, int], float], same_outputs: int
) -> None:
    run = model_run(PREFILL, {**DECODE, **change}, same_outputs=same_outputs)
    assert runs.choose_settings(run)[:2] == ("float32", 1)


def test_equal_speeds_keep_fp32_and_the_faster_thread_count() -> None:
    flat = dict.fromkeys(PREFILL, 50.0)
    decode = {("float32", 1): 2.0, ("float32", 2): 3.0, ("bfloat16", 1): 2.0, ("bfloat16", 2): 3.1}
    assert runs.choose_settings(model_run(flat, decode))[:2] == ("float32", 2)


def test_report_lists_every_variant_the_choice_and_the_divergence(tmp_path: Path) -> None:
    path = tmp_path / "model_ladder.md"
    run = model_run(PREFILL, DECODE, same_outputs=2)
    report = runs.write_report([run], path, loads=(4.0, 5.0), new_tokens=64)
    assert path.read_text() == report
    assert "Timings are ratios measured in one run" in report
    assert "| qwen2.5-coder-0.5b | bfloat16 | 1 | 80 | 2.7 | 1.08x |" in report
    assert "| qwen2.5-coder-0.5b | float32 | 2 | 25 | 1.5 | 0.60x |" in report
    assert "| qwen2.5-coder-0.5b | 9/9 | 2/3 | after 1 same tokens" in report
    assert "| bfloat16, 1 thread(s) | bf16 prefill 2.00x, decode 1.08x fp32" in report
    assert "load average 4.0 at the start, 5.0 at the end" in report


def test_saved_runs_load_back_into_the_same_report(tmp_path: Path) -> None:
    run = model_run(PREFILL, DECODE, same_outputs=2)
    runs.save_runs([run], tmp_path / "model_ladder.json", loads=(4.0, 5.0), new_tokens=64)
    loaded, loads, new_tokens = runs.load_runs(tmp_path / "model_ladder.json")
    assert (loaded, loads, new_tokens) == ([run], (4.0, 5.0), 64)
