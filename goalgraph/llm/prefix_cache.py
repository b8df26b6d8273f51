"""Reuse the KV cache of a prompt's static prefix instead of re-encoding it every call.

An agent sends the same long system turn (instructions plus the tool list) at every step, then a
varying tail. On a 2-core CPU the 135M model prefills ~270 tokens/s, so re-encoding a 1,500-token
system turn costs ~5 s a step; copying its cached keys and values costs 30-40 ms.

The prefix is the rendered ChatML prompt up to the end of its system turn (the first
``<|im_end|>\\n``). It is used only if its token ids are a true prefix of the full prompt's ids
(otherwise the call runs without a cache). Entries are keyed by those token ids, so a change of
tools or instructions is a new entry, and are evicted least recently used.
"""

from __future__ import annotations

import copy
import inspect
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["PrefixCache", "PrefixCacheStats", "prompt_prefix"]

_SYSTEM_START = "<|im_start|>system"
_TURN_END = "<|im_end|>\n"


def prompt_prefix(prompt: str) -> str | None:
    """Return ``prompt`` up to the end of its leading system turn, or ``None`` if it has none."""
    if not prompt.startswith(_SYSTEM_START):
        return None
    end = prompt.find(_TURN_END)
    if end < 0:
        return None
    return prompt[: end + len(_TURN_END)]


@dataclass
class PrefixCacheStats:
    """Counters of one model's prefix cache (cumulative; compare before and after a call)."""

    hits: int = 0
    """Calls that reused a cached prefix."""
    misses: int = 0
    """Calls that encoded their prefix and stored it."""
    fallbacks: int = 0
    """Calls that ran without a cache (no system turn, or it does not tokenize as a prefix)."""
    evictions: int = 0
    """Entries dropped to respect ``max_entries`` / ``max_tokens``."""


class PrefixCache:
    """An LRU map from prefix token ids to that prefix's ``past_key_values``, for one model.

    Example:
        >>> cache = PrefixCache.for_model(model)
        >>> past = cache.lookup(tokenizer, prompt)  # a private copy, or None
        >>> model.generate(**inputs, past_key_values=past)  # if past is not None
    """

    _instances: ClassVar[weakref.WeakKeyDictionary[Any, PrefixCache]] = weakref.WeakKeyDictionary()
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: Any, *, max_entries: int = 8, max_tokens: int = 8192) -> None:
        """Create an empty cache for ``model``.

        Args:
            model: The causal LM whose keys and values are cached.
            max_entries: Prefixes kept at most.
            max_tokens: Prefix tokens kept at most over all entries (the 135M model stores
                ~44 KB per token in fp32, so 8,192 tokens are ~360 MB).
        """
        self._model = weakref.ref(model)
        self.max_entries = max_entries
        self.max_tokens = max_tokens
        self.stats = PrefixCacheStats()
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: Any) -> PrefixCache:
        """Return the cache shared by every chat model wrapping ``model``."""
        with cls._instances_lock:
            cache = cls._instances.get(model)
            if cache is None:
                cache = cls._instances[model] = cls(model)
            return cache

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry (the counters are kept)."""
        with self._lock:
            self._entries.clear()

    def lookup(self, tokenizer: Any, prompt: str) -> Any | None:
        """Return a private copy of the KV cache of ``prompt``'s prefix, encoding it if new.

        The copy may be passed as ``past_key_values`` to one ``generate()`` call together with
        the full prompt's ids (``tokenizer(prompt)``, as the text-generation pipeline encodes
        it); ``generate`` then encodes only the tokens after the prefix. Returns ``None`` when
        the prompt has no usable prefix.
        """
        prefix = prompt_prefix(prompt)
        if prefix is None:
            self._fall_back()
            return None
        prefix_ids = list(tokenizer(prefix)["input_ids"])
        full_ids = tokenizer(prompt)["input_ids"]
        # The boundary must fall between tokens: a token that spans it would be encoded
        # differently in the full prompt, and the cached keys would belong to other tokens.
        # At least one token must remain for generate() to encode.
        if (
            not prefix_ids
            or len(prefix_ids) >= len(full_ids)
            or list(full_ids[: len(prefix_ids)]) != prefix_ids
            or len(prefix_ids) > self.max_tokens
        ):
            self._fall_back()
            return None
        key = tuple(prefix_ids)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._encode(prefix_ids)
                self._entries[key] = entry
                self.stats.misses += 1
                self._evict()
            else:
                self._entries.move_to_end(key)
                self.stats.hits += 1
            # generate() appends to the cache it is given; the stored entry must stay intact.
            return copy.deepcopy(entry)

    def _fall_back(self) -> None:
        with self._lock:
            self.stats.fallbacks += 1

    def _encode(self, prefix_ids: list[int]) -> Any:
        import torch

        model = self._model()
        if model is None:  # pragma: no cover - the model owns this cache through for_model
            raise RuntimeError("the model of this prefix cache was garbage-collected")
        ids = torch.tensor([prefix_ids], dtype=torch.long, device=model.device)
        kwargs: dict[str, Any] = {"attention_mask": torch.ones_like(ids), "use_cache": True}
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            # Only the keys and values are wanted: projecting all positions onto the
            # vocabulary (49k rows for SmolLM2) would cost as much as a third of the prefill.
            kwargs["logits_to_keep"] = 1
        with torch.no_grad():
            output = model(input_ids=ids, **kwargs)
        # transformers 5.2x names it ``cache`` and warns on ``past_key_values``; older, the reverse.
        return output.cache if "cache" in output else output.past_key_values

    def _evict(self) -> None:
        def total() -> int:
            return sum(len(key) for key in self._entries)

        while len(self._entries) > 1 and (
            len(self._entries) > self.max_entries or total() > self.max_tokens
        ):
            self._entries.popitem(last=False)
            self.stats.evictions += 1
