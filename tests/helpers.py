"""Helpers shared by tests: server processes on 127.0.0.1 and stub tools for model tests."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

from langchain_core.tools import tool
from pydantic import Field

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` by path (benchmarks/ is a folder of scripts, not a package).

    The folder goes on ``sys.path`` first, as when the script runs, so its shared helpers import.
    """
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 10) -> None:
    """Terminate ``process``, killing it if it does not exit within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


RESUME_WORKER = Path(__file__).resolve().parent / "integration" / "resume_worker.py"


def recorded_steps(path: Path) -> list[str]:
    """Return the steps ``resume_worker.py`` has recorded so far, one per line."""
    return path.read_text().splitlines() if path.exists() else []


def kill_mid_run_then_resume(env: dict[str, str], record: Path) -> dict[str, Any]:
    """SIGKILL ``resume_worker.py run`` during step 2, resume it, and return the run's result.

    The worker records each executed step in ``record``; ``env`` says where its checkpoints go.
    """
    worker = subprocess.Popen(
        [sys.executable, str(RESUME_WORKER), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(recorded_steps(record)) < 1:
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
        assert time.monotonic() < deadline, "the worker never finished step 1"
        time.sleep(0.02)
    time.sleep(0.15)  # Now inside think's scripted 0.4 s for step 2: no tool call in flight.
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    assert recorded_steps(record) == ["step-1"]

    resumed = subprocess.run(
        [sys.executable, str(RESUME_WORKER), "resume"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    return dict(json.loads(resumed.stdout.strip().splitlines()[-1]))


@tool
def calculator(expression: Annotated[str, Field(max_length=40)]) -> str:
    """Evaluate an arithmetic expression such as 2+2."""
    return expression


@tool
def read_file(path: Annotated[str, Field(max_length=40)]) -> str:
    """Read a text file from the workspace."""
    return path


def needs_ladder_model(name: str) -> list[Any]:
    """Return the ``pytestmark`` of a module that runs ladder model ``name`` for real: marked
    ``model``, and skipped with the install command when the model is not installed."""
    import pytest

    from goalgraph.llm.install import list_models

    state = {status.entry.name: status.state for status in list_models()}[name]
    reason = f"{name} is not installed: run `goalgraph models install {name}` (or make models)"
    return [pytest.mark.model, pytest.mark.skipif(state == "missing", reason=reason)]


def random_llama(tokenizer: Any, *, hidden_size: int = 16, layers: int = 1, seed: int = 0) -> Any:
    """Return a tiny Llama model with random weights (seeded) over ``tokenizer``'s vocabulary:
    a real transformers model for decoding tests that need no trained weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()
