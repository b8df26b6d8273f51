"""Precision and threads for each ladder model, for ``llm_runtime.py --ladder``.

Each installed ladder model is loaded through ``load_local_model`` (verified GGUF, converted once
to safetensors) in float32 and in bfloat16 (the agent's own path: the float32 folder cast at
load); both stay loaded so that their timings can alternate. Then

* agreement: greedy generation of up to 64 new tokens on three chat prompts (arithmetic, code,
  a tool call rendered with the template's ``tools=``) in each precision, one thread; bfloat16's
  tokens are compared with float32's (common prefix in tokens, prompts with identical output);
* speed, in ``ROUNDS`` rounds that alternate the order of the variants (float32 and bfloat16,
  1 and 2 threads): prefill tokens/s of one forward pass over 256 prompt tokens, and decode
  tokens/s of 16 greedy tokens after the code prompt (the time of 16 minus that of the first,
  which holds the prompt's prefill). The best round counts: on a machine shared with other
  work, the fastest run is the one least disturbed.

The chosen settings follow ``choose_settings``; the table goes to
``benchmarks/results/model_ladder.md``.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PREFILL_TOKENS = 256
SPEED_TOKENS = 16
ROUNDS = 2
DTYPES = ("float32", "bfloat16")
THREADS = (1, 2)
# Decode must be this much faster in bfloat16 than in float32 for bfloat16 to be chosen.
MIN_SPEEDUP = 1.15

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
}
PROMPTS: list[tuple[str, list[dict[str, Any]] | None]] = [
    ("What is 17 * 23? Answer with the number only.", None),
    ("Write a Python function that returns the n-th Fibonacci number.", None),
    ("What is the weather like in Paris right now?", [WEATHER_TOOL]),
]
SPEED_PROMPT = 1  # The code prompt: it never stops within SPEED_TOKENS.


@dataclass
class Variant:
    """One model in one precision at one thread count: its best speeds."""

    dtype: str
    threads: int
    prefill_tok_s: float = 0.0
    decode_tok_s: float = 0.0


@dataclass
class Agreement:
    """One precision's greedy outputs on ``PROMPTS`` and how they compare with float32's."""

    dtype: str
    outputs: list[list[int]]
    texts: list[str]
    same_prefix: int = 0
    compared: int = 0
    same_outputs: int = 0
    differences: list[str] = field(default_factory=list)


@dataclass
class ModelRun:
    """Every measurement of one ladder model."""

    name: str
    parameters: int = 0
    load_s: dict[str, float] = field(default_factory=dict)
    variants: list[Variant] = field(default_factory=list)
    agreement: dict[str, Agreement] = field(default_factory=dict)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_model(
    name: str, *, prefill_text: Callable[[Any, int], str], new_tokens: int = 64
) -> ModelRun:
    """Measure ``name`` (see the module docstring).

    ``prefill_text(tokenizer, tokens)`` returns a text of about ``tokens`` tokens.
    """
    import torch

    from goalgraph.llm.loader import load_local_model, unload_local_models

    run = ModelRun(name=name)
    before = torch.get_num_threads()
    models: dict[str, Any] = {}
    try:
        for dtype in DTYPES:
            _progress(f"{name}: loading in {dtype} ...")
            started = time.perf_counter()
            models[dtype], tokenizer, _ = load_local_model(name, device="cpu", dtype=dtype)
            run.load_s[dtype] = time.perf_counter() - started
        run.parameters = sum(p.numel() for p in models["float32"].parameters())
        torch.set_num_threads(1)
        for dtype in DTYPES:
            _progress(f"{name}: greedy outputs in {dtype} ...")
            run.agreement[dtype] = _greedy(models[dtype], tokenizer, dtype, new_tokens)
        _compare(run, tokenizer)
        long_ids = tokenizer(prefill_text(tokenizer, PREFILL_TOKENS + 50), return_tensors="pt")
        long_ids = long_ids["input_ids"][:, :PREFILL_TOKENS]
        variants = [Variant(dtype, threads) for threads in THREADS for dtype in DTYPES]
        for round_ in range(ROUNDS):
            for variant in variants if round_ % 2 == 0 else variants[::-1]:
                torch.set_num_threads(variant.threads)
                prefill, decode = _speed(models[variant.dtype], tokenizer, long_ids)
                variant.prefill_tok_s = max(variant.prefill_tok_s, prefill)
                variant.decode_tok_s = max(variant.decode_tok_s, decode)
                _progress(
                    f"{name} round {round_ + 1}: {variant.dtype}, {variant.threads} thread(s): "
                    f"prefill {prefill:.0f} tok/s, decode {decode:.1f} tok/s"
                )
        run.variants = variants
    finally:
        torch.set_num_threads(before)
        models.clear()
        unload_local_models()
        gc.collect()
    return run


def _chat_inputs(tokenizer: Any, prompt: str, tools: list[dict[str, Any]] | None) -> Any:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tools=tools,
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )


def _greedy(model: Any, tokenizer: Any, dtype: str, new_tokens: int) -> Agreement:
    import torch

    outputs, texts = [], []
    with torch.no_grad():
        for prompt, tools in PROMPTS:
            inputs = _chat_inputs(tokenizer, prompt, tools)
            out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
            tokens = out[0, inputs["input_ids"].shape[1] :].tolist()
            outputs.append(tokens)
            texts.append(tokenizer.decode(tokens, skip_special_tokens=True))
    return Agreement(dtype, outputs, texts)


def _speed(model: Any, tokenizer: Any, long_ids: Any) -> tuple[float, float]:
    import torch

    inputs = _chat_inputs(tokenizer, *PROMPTS[SPEED_PROMPT])
    with torch.no_grad():
        model(long_ids[:, :32])  # Warm-up.
        started = time.perf_counter()
        model(long_ids)
        prefill = long_ids.shape[1] / (time.perf_counter() - started)
        # Decode alone: the time of SPEED_TOKENS tokens minus that of the first one (the
        # prompt's prefill).
        elapsed = []
        for tokens in (1, SPEED_TOKENS):
            started = time.perf_counter()
            model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            elapsed.append(time.perf_counter() - started)
    return prefill, (SPEED_TOKENS - 1) / max(elapsed[1] - elapsed[0], 1e-9)


def _compare(run: ModelRun, tokenizer: Any) -> None:
    """Fill each precision's agreement with float32's greedy output."""
    base = run.agreement["float32"]
    for agreement in run.agreement.values():
        for ours, theirs in zip(agreement.outputs, base.outputs, strict=True):
            prefix = 0
            for a, b in zip(ours, theirs, strict=False):
                if a != b:
                    break
                prefix += 1
            agreement.same_prefix += prefix
            agreement.compared += len(theirs)
            agreement.same_outputs += ours == theirs
            if ours != theirs:
                agreement.differences.append(_divergence(tokenizer, theirs, ours, prefix))


def _divergence(tokenizer: Any, fp32: list[int], bf16: list[int], prefix: int) -> str:
    """Describe where two greedy outputs part: a few tokens before, some after, of each."""

    def excerpt(tokens: list[int]) -> str:
        return _short(tokenizer.decode(tokens[max(prefix - 4, 0) : prefix + 8]), 60)

    return (
        f"after {prefix} same tokens, fp32 `...{excerpt(fp32)}...` / bf16 `...{excerpt(bf16)}...`"
    )


def save_runs(
    runs: list[ModelRun], path: Path, *, loads: tuple[float, float], new_tokens: int
) -> None:
    """Write the raw measurements (speeds, greedy tokens and texts) as JSON."""
    data = {
        "load_average": list(loads),
        "new_tokens": new_tokens,
        "runs": [asdict(r) for r in runs],
    }
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def load_runs(path: Path) -> tuple[list[ModelRun], tuple[float, float], int]:
    """Read what ``save_runs`` wrote: ``(runs, load averages, new_tokens)``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = []
    for raw in data["runs"]:
        variants = [Variant(**variant) for variant in raw.pop("variants")]
        agreement = {key: Agreement(**value) for key, value in raw.pop("agreement").items()}
        runs.append(ModelRun(**raw, variants=variants, agreement=agreement))
    start, end = data["load_average"]
    return runs, (start, end), data["new_tokens"]


def choose_settings(run: ModelRun) -> tuple[str, int, str]:
    """Return ``(dtype, threads, why)`` for ``run``'s model on this CPU.

    bfloat16 is chosen when, at the best thread count of each precision, it is no slower than
    float32 at prefill and at decode, at least ``MIN_SPEEDUP`` times faster at one of them
    (an agent step is a long prefill and a short decode), and its greedy output equals
    float32's on all prompts but at most one. The threads are those of the chosen precision's
    faster decode.
    """
    best = {
        dtype: max((v for v in run.variants if v.dtype == dtype), key=lambda v: v.decode_tok_s)
        for dtype in DTYPES
    }
    fastest_prefill = {
        dtype: max(v.prefill_tok_s for v in run.variants if v.dtype == dtype) for dtype in DTYPES
    }
    decode = best["bfloat16"].decode_tok_s / best["float32"].decode_tok_s
    prefill = fastest_prefill["bfloat16"] / fastest_prefill["float32"]
    same = run.agreement["bfloat16"].same_outputs
    figures = f"bf16 prefill {prefill:.2f}x, decode {decode:.2f}x fp32; same output {same}/3"
    faster = min(prefill, decode) >= 1.0 and max(prefill, decode) >= MIN_SPEEDUP
    if faster and same >= len(PROMPTS) - 1:
        return "bfloat16", best["bfloat16"].threads, figures
    return "float32", best["float32"].threads, figures


def write_report(
    runs: list[ModelRun], path: Path, *, loads: tuple[float, float], new_tokens: int
) -> str:
    """Write the markdown report to ``path`` and return it.

    ``loads`` are the 1-minute load averages at the start and the end of the measurement.
    """
    import torch
    import transformers

    from goalgraph.llm.ladder import ladder_model
    from goalgraph.llm.loader import cpu_has_native_bf16

    lines = [
        "# Model ladder: precision and threads on this CPU",
        "",
        f"`benchmarks/llm_runtime.py --ladder`, {datetime.date.today().isoformat()}: "
        f"{_cpu_name()}, {os.cpu_count()} cores, native bfloat16 "
        f"{'yes (avx512_bf16)' if cpu_has_native_bf16() else 'no'}; "
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"Python {platform.python_version()}.",
        "",
        "**Timings are ratios measured in one run** on a 2-core machine shared with other "
        f"engineers' work (load average {loads[0]:.1f} at the start, {loads[1]:.1f} at the "
        "end): compare the rows of one model with each other, not with other runs or machines.",
        "",
        f"Speed: prefill is one forward pass over {PREFILL_TOKENS} prompt tokens; decode is "
        f"{SPEED_TOKENS} greedy tokens after a chat prompt, less the first (the prompt's "
        f"prefill). Each figure is the best of {ROUNDS} rounds that "
        "alternate the order of the variants. Agreement (one thread): greedy generation of up "
        f"to {new_tokens} new tokens on {len(PROMPTS)} chat prompts (17 * 23, a Fibonacci "
        "function, a weather question with a `get_weather` tool), compared with float32's "
        "tokens: common prefix in tokens, and prompts whose output is identical.",
        "",
        "| model | dtype | threads | prefill tok/s | decode tok/s | decode vs fp32, 1 thread |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        base = next(v for v in run.variants if (v.dtype, v.threads) == ("float32", 1))
        for v in sorted(run.variants, key=lambda v: (DTYPES.index(v.dtype), v.threads)):
            lines.append(
                f"| {run.name} | {v.dtype} | {v.threads} | {v.prefill_tok_s:.0f} | "
                f"{v.decode_tok_s:.1f} | {v.decode_tok_s / base.decode_tok_s:.2f}x |"
            )
    lines += [
        "",
        "## bfloat16 against float32: greedy agreement",
        "",
        "| model | same prefix tokens | same output | where bf16 parts from fp32 |",
        "|---|---:|---:|---|",
    ]
    for run in runs:
        bf16 = run.agreement["bfloat16"]
        lines.append(
            f"| {run.name} | {bf16.same_prefix}/{bf16.compared} | "
            f"{bf16.same_outputs}/{len(PROMPTS)} | {'; '.join(bf16.differences) or '-'} |"
        )
    lines += [
        "",
        "## Chosen settings",
        "",
        f"Rule (`choose_settings`): bfloat16 when, at each precision's best thread count, it is "
        f"no slower than float32 at prefill and decode, at least {MIN_SPEEDUP}x faster at one "
        "of them, and its greedy output equals float32's on all prompts but at most one; the "
        "threads of the chosen precision's faster decode. `dtype: auto` picks the ladder "
        "entry's `cpu_dtype` only on a CPU with native bfloat16 (float32 otherwise); the "
        "entry's `threads` is a recommendation (`model.threads` sets it).",
        "",
        "| model | parameters (loaded) | load s fp32 / bf16 | chosen | figures | ladder entry |",
        "|---|---:|---:|---|---|---|",
    ]
    notes = [
        "",
        "Loaded parameters count the output matrix separately where the GGUF stores it "
        "untied (both Qwen files do). Loading float32 maps the converted safetensors folder; "
        "bfloat16 casts it while loading. Where a ladder entry differs from the choice, "
        "`goalgraph/llm/ladder.py` says why.",
    ]
    for run in runs:
        dtype, threads, why = choose_settings(run)
        entry = ladder_model(run.name)
        recorded = f"{entry.cpu_dtype}, threads {entry.threads or 'default'}"
        lines.append(
            f"| {run.name} | {run.parameters:,} | {run.load_s['float32']:.1f} / "
            f"{run.load_s['bfloat16']:.1f} | {dtype}, {threads} thread(s) | {why} | "
            f"{recorded} |"
        )
    lines += [*notes, "", "## Greedy outputs, float32", ""]
    for run in runs:
        for (prompt, _), text in zip(PROMPTS, run.agreement["float32"].texts, strict=True):
            lines.append(f"- {run.name}, *{prompt}*: `{_short(text, 140)}`")
    report = "\n".join(lines) + "\n"
    path.write_text(report, encoding="utf-8")
    return report


def _short(text: str, limit: int = 60) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters, safe in a markdown cell."""
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else flat[: limit - 3] + "..."
    return flat.replace("|", "\\|").replace("`", "'")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
