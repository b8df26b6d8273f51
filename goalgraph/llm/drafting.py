"""Draft tokens for transformers' assisted decoding: the grammar's fixed text and prompt look-up.

Under a grammar much of what the model writes is fixed: after ``{"tool": "read_file", "args": {``
the grammar may allow only ``"path": "``. Decoding those tokens one by one still costs one forward
pass each. Assisted decoding (``generate(prompt_lookup_num_tokens=...)``) instead takes a draft of
several tokens, scores them all in one forward pass, and keeps the longest prefix the model itself
would have chosen, plus one token of its own. Under greedy decoding the output is the model's own
(up to floating-point differences between a one-token and a many-token forward pass); only the
number of forward passes changes.

``DraftCandidates`` drafts, in order of preference:

1. the grammar's jump-forward string (``GrammarMatcher.find_jump_forward_string``): text every
   continuation must start with, tokenized as the tokenizer would;
2. prompt look-up: the tokens that followed the last few generated tokens where they occur in the
   prompt, which is what a model copying a tool result or a path writes next.

A draft is cut where the grammar would reject it. Transformers re-runs the logits processors over
each draft position and again after a rejected tail, so every processor in the list must follow
``input_ids`` wherever they go (several tokens forward, back again): ``GrammarProcessor`` replaces
xgrammar's contrib processor (which assumes one token per call) for that reason.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DRAFT_KWARG",
    "DraftCandidates",
    "DraftStats",
    "GrammarProcessor",
    "common_prefix",
    "drafting_enabled",
    "enable_drafting",
    "lookup_draft",
]

DRAFT_KWARG = "prompt_lookup_num_tokens"
"""The ``generate()`` keyword that switches transformers to assisted decoding; its value is the
most tokens one prompt look-up draft may hold (grammar drafts take up to ``MAX_FORCED_TOKENS``)."""

log = logging.getLogger(__name__)

MAX_FORCED_TOKENS = 48
"""The most tokens of grammar-fixed text drafted at once (longer text is drafted in turns)."""


class GrammarProcessor:
    """An xgrammar logits processor for one ``generate()`` call that follows ``input_ids``.

    Each call brings the matcher to the generated tokens in ``input_ids``: it rolls back tokens
    that are no longer there (a rejected draft) and accepts the new ones (one in plain decoding,
    several in assisted decoding), then masks every token the grammar forbids next.
    """

    def __init__(self, compiled_grammar: Any) -> None:
        """Start a matcher on ``compiled_grammar`` (an ``xgrammar.CompiledGrammar``)."""
        import xgrammar as xgr

        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled_grammar)
        self._bitmask = xgr.allocate_token_bitmask(1, compiled_grammar.tokenizer_info.vocab_size)
        self._prompt_length: int | None = None
        self._accepted: list[int] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Follow ``input_ids``, then set the scores of forbidden next tokens to ``-inf``."""
        self.sync(input_ids)
        if self._matcher.is_terminated():
            return scores
        self._matcher.fill_next_token_bitmask(self._bitmask, 0)
        device = scores.device
        masked = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
        self._xgr.apply_token_bitmask_inplace(masked, self._bitmask.to(masked.device))
        return masked.to(device)

    def sync(self, input_ids: Any) -> None:
        """Bring the matcher to the tokens generated so far in ``input_ids`` (batch of one).

        Raises:
            ValueError: A generated token breaks the grammar (the processor did not choose it).
        """
        if self._prompt_length is None:
            self._prompt_length = int(input_ids.shape[1])
        generated = input_ids[0, self._prompt_length :].tolist()
        common = common_prefix(self._accepted, generated)
        if common < len(self._accepted):
            self._matcher.rollback(len(self._accepted) - common)
            del self._accepted[common:]
        for token in generated[common:]:
            if not self._matcher.accept_token(token):
                raise ValueError(f"token {token} breaks the grammar after {len(self._accepted)}")
            self._accepted.append(token)

    def forced_text(self, input_ids: Any) -> str:
        """Return the text the grammar fixes after ``input_ids`` (``""`` when it fixes none)."""
        self.sync(input_ids)
        if self._matcher.is_terminated():
            return ""
        return str(self._matcher.find_jump_forward_string())

    def allowed_prefix(self, input_ids: Any, tokens: Sequence[int]) -> int:
        """Return how many of ``tokens``, in order after ``input_ids``, the grammar allows."""
        self.sync(input_ids)
        allowed = 0
        for token in tokens:
            if not self._matcher.accept_token(token):
                break
            allowed += 1
        if allowed:
            self._matcher.rollback(allowed)
        return allowed


def lookup_draft(ids: Sequence[int], *, max_ngram: int, max_tokens: int) -> list[int]:
    """Return what followed the latest earlier occurrence of the last ``n`` tokens of ``ids``.

    Longer n-grams are tried first (``max_ngram`` down to 1); the latest occurrence wins, since
    the newest tool result is what a model most often copies. Returns ``[]`` without a match.
    """
    ids = list(ids)
    length = len(ids)
    if length < 2:
        return []
    last = ids[-1]
    ends = [i for i in range(length - 2, -1, -1) if ids[i] == last]
    for size in range(min(max_ngram, length - 1), 0, -1):
        tail = ids[length - size :]
        for end in ends:
            start = end - size + 1
            if start >= 0 and ids[start : end + 1] == tail:
                follow = ids[end + 1 : end + 1 + max_tokens]
                if follow:
                    return follow
    return []


@dataclass
class DraftStats:
    """What assisted decoding did for one model, over all its ``generate()`` calls."""

    passes: int = 0
    """Forward passes that checked a draft (each also yields one token of the model's own)."""
    grammar_tokens: int = 0
    """Draft tokens taken from the grammar's fixed text."""
    lookup_tokens: int = 0
    """Draft tokens copied from the prompt."""
    accepted: int = 0
    """Draft tokens the model kept: forward passes saved."""

    @classmethod
    def for_model(cls, model: Any) -> DraftStats:
        """Return the counters kept on ``model`` (created on first use)."""
        stats = getattr(model, "_goalgraph_draft_stats", None)
        if stats is None:
            stats = cls()
            model._goalgraph_draft_stats = stats
        return stats


class DraftCandidates:
    """A transformers ``CandidateGenerator`` that drafts grammar-fixed text, else prompt look-up.

    Args:
        tokenizer: The model's tokenizer (to tokenize fixed text).
        grammar: The call's ``GrammarProcessor``, or ``None`` for free text (look-up only).
        lookup_tokens: The most tokens of one look-up draft.
        max_ngram: The longest generated tail matched against the prompt.
        max_length: ``generate()``'s ``max_length`` (prompt plus new tokens).
        stop_ids: Token ids a draft must stop before (end of turn).
        stats: Counters to add this call's drafting to.
    """

    def __init__(
        self,
        tokenizer: Any,
        grammar: GrammarProcessor | None,
        *,
        lookup_tokens: int,
        max_ngram: int = 3,
        max_length: int,
        stop_ids: Sequence[int] = (),
        stats: DraftStats | None = None,
    ) -> None:
        """Keep the settings; drafting starts at the first ``get_candidates``."""
        self._tokenizer = tokenizer
        self._grammar = grammar
        self._lookup_tokens = lookup_tokens
        self._max_ngram = max_ngram
        self._max_length = max_length
        self._stop_ids = set(stop_ids)
        self.stats = stats if stats is not None else DraftStats()
        """This call's counters (shared with the model's when given)."""

    # transformers reads this attribute to decide what to pass to get_candidates.
    requires_model_outputs = False

    @property
    def num_drafting_tokens(self) -> int:
        """The most tokens one draft holds (transformers >= 5.25 sizes cache recording by it)."""
        return max(MAX_FORCED_TOKENS, self._lookup_tokens)

    def get_candidates(self, input_ids: Any, **_: Any) -> tuple[Any, None]:
        """Return ``input_ids`` followed by the draft (unchanged when there is none)."""
        import torch

        room = self._max_length - int(input_ids.shape[1]) - 1
        draft, from_grammar = self._draft(input_ids)
        draft = draft[: max(room, 0)]
        if not draft:
            return input_ids, None
        self.stats.passes += 1
        if from_grammar:
            self.stats.grammar_tokens += len(draft)
        else:
            self.stats.lookup_tokens += len(draft)
        tail = torch.tensor([draft], dtype=input_ids.dtype, device=input_ids.device)
        return torch.cat((input_ids, tail), dim=1), None

    def update_candidate_strategy(self, input_ids: Any, scores: Any, num_matches: int) -> None:
        """Count the draft tokens the model kept."""
        self.stats.accepted += int(num_matches)

    def _draft(self, input_ids: Any) -> tuple[list[int], bool]:
        """Return the draft after ``input_ids`` and whether it is the grammar's fixed text."""
        draft: list[int] = []
        if self._grammar is not None:
            text = self._grammar.forced_text(input_ids)
            if text:
                draft = self._tokenizer.encode(text, add_special_tokens=False)[:MAX_FORCED_TOKENS]
        from_grammar = bool(draft)
        if not draft:
            draft = lookup_draft(
                input_ids[0].tolist(), max_ngram=self._max_ngram, max_tokens=self._lookup_tokens
            )
        for index, token in enumerate(draft):
            if token in self._stop_ids:
                draft = draft[:index]
                break
        if draft and self._grammar is not None:
            draft = draft[: self._grammar.allowed_prefix(input_ids, draft)]
        return draft, from_grammar


def enable_drafting(model: Any, tokenizer: Any) -> bool:
    """Make ``model.generate(prompt_lookup_num_tokens=n)`` draft with ``DraftCandidates``.

    transformers picks the candidate generator in a private method; this replaces it on this
    model object only (not the class), and only for prompt look-up: every other assisted mode
    keeps transformers' own generator. A two-token generation then checks that assisted decoding
    works for this model (a recurrent cache cannot be cropped back after a rejected draft, and a
    transformers release may change the private method): if not, the model is left as it was
    and a warning says why. Returns whether drafting is on; calling it again is harmless.
    """
    if hasattr(model, "_goalgraph_drafting"):
        return bool(model._goalgraph_drafting)
    original = model._get_candidate_generator
    original_prepare = model.prepare_inputs_for_generation

    def candidate_generator(
        self: Any,
        generation_config: Any,
        input_ids: Any,
        inputs_tensor: Any,
        logits_processor: Any,
        model_kwargs: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if generation_config.prompt_lookup_num_tokens is None:
            return original(
                generation_config,
                input_ids,
                inputs_tensor,
                logits_processor,
                model_kwargs,
                *args,
                **kwargs,
            )
        grammar = next((p for p in logits_processor if isinstance(p, GrammarProcessor)), None)
        eos = generation_config._eos_token_tensor
        stop_ids = [] if eos is None else [int(t) for t in eos.reshape(-1).tolist()]
        return DraftCandidates(
            tokenizer,
            grammar,
            lookup_tokens=generation_config.prompt_lookup_num_tokens,
            max_ngram=generation_config.max_matching_ngram_size or 3,
            max_length=generation_config.max_length,
            stop_ids=stop_ids,
            stats=DraftStats.for_model(self),
        )

    model._get_candidate_generator = types.MethodType(candidate_generator, model)
    model.prepare_inputs_for_generation = _encode_only_uncached(original_prepare)
    problem = _assisted_decoding_problem(model)
    if problem is not None:
        del model._get_candidate_generator, model.prepare_inputs_for_generation
        log.warning("assisted decoding is off for this model: %s", problem)
    model._goalgraph_drafting = problem is None
    return problem is None


def drafting_enabled(model: Any) -> bool:
    """Tell whether ``enable_drafting`` turned drafting on for ``model``."""
    return bool(getattr(model, "_goalgraph_drafting", False))


def _assisted_decoding_problem(model: Any) -> str | None:
    """Generate two tokens under assisted decoding; return what went wrong, or ``None``."""
    import torch

    ids = torch.tensor([[0, 1, 0]], dtype=torch.long, device=model.device)
    try:
        with torch.no_grad():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=2,
                do_sample=False,
                pad_token_id=0,
                **{DRAFT_KWARG: 2},
            )
    except Exception as exc:  # Any failure means: decode without drafts.
        return f"{type(exc).__name__}: {exc}"
    return None


def _encode_only_uncached(prepare: Any) -> Any:
    """Wrap ``prepare_inputs_for_generation`` so assisted decoding honours a pre-filled cache.

    transformers' plain decoding encodes only the prompt tokens a given cache (goalgraph's prefix
    KV cache) does not hold, but its assisted decoding (5.24) passes the whole prompt in its
    first forward pass, on top of the cache: every position is then encoded twice and the output
    is garbage. Only that first pass leaves ``next_sequence_length`` unset with a non-empty
    cache; the wrapper sets it to the uncached tail there and changes nothing otherwise.
    """

    @functools.wraps(prepare)
    def prepare_inputs(input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if (
            kwargs.get("is_first_iteration")
            and kwargs.get("next_sequence_length") is None
            and not args
            and cache is not None
        ):
            cached = int(cache.get_seq_length())
            if 0 < cached < int(input_ids.shape[1]):
                kwargs["next_sequence_length"] = int(input_ids.shape[1]) - cached
        return prepare(input_ids, *args, **kwargs)

    return prepare_inputs


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Return how many leading tokens ``a`` and ``b`` share (where a rejected draft began)."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count
