"""Fit a chat prompt into the model's context window, explicitly and with a logged warning.

Tokens are counted with the model's own tokenizer on the rendered prompt. When the prompt plus the
tokens to generate would not fit, the oldest turns between the system turn and the last turn are
dropped first (the plan, goal and newest observation matter most); if that is not enough, the
longest remaining turn is cut, with a visible marker saying how much was removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TRUNCATION_MARKER", "Fitted", "fit_turns"]

log = logging.getLogger(__name__)

TRUNCATION_MARKER = "\n[... {count} characters cut to fit the context window ...]\n"

Turn = dict[str, str]


@dataclass(frozen=True)
class Fitted:
    """A prompt that fits, and what was removed to make it fit."""

    prompt: str
    """The rendered prompt."""
    tokens: int
    """Its length in tokens."""
    dropped_turns: int
    """Whole turns removed (oldest first)."""
    cut_characters: int
    """Characters cut from the longest turn."""


def fit_turns(
    turns: list[Turn],
    *,
    render: Callable[[list[Turn]], str],
    count: Callable[[str], int],
    budget: int,
) -> Fitted:
    """Return the rendered ``turns``, shortened until they take at most ``budget`` tokens.

    Args:
        turns: Chat turns (``role`` and ``content``); the first system turn and the last turn are
            never dropped.
        render: Renders turns to the prompt text.
        count: Counts a prompt's tokens.
        budget: Most prompt tokens allowed (context window minus tokens to generate).
    """
    turns = [dict(turn) for turn in turns]
    prompt = render(turns)
    tokens = count(prompt)
    dropped = cut = 0
    first = 1 if turns and turns[0]["role"] == "system" else 0
    while tokens > budget and len(turns) - first > 1:
        del turns[first]
        dropped += 1
        prompt = render(turns)
        tokens = count(prompt)
    while tokens > budget:
        longest = max(turns, key=lambda turn: len(turn["content"]))
        excess = tokens - budget
        # Characters per token is ~4 in English; cut generously so one more pass usually fits.
        remove = min(len(longest["content"]), max(64, excess * 5))
        if remove == 0:
            break
        keep = len(longest["content"]) - remove
        longest["content"] = longest["content"][:keep] + TRUNCATION_MARKER.format(count=remove)
        cut += remove
        prompt = render(turns)
        tokens = count(prompt)
    if dropped or cut:
        log.warning(
            "prompt over the context budget of %d tokens: dropped %d oldest turn(s), cut %d "
            "characters; now %d tokens",
            budget,
            dropped,
            cut,
            tokens,
        )
    return Fitted(prompt=prompt, tokens=tokens, dropped_turns=dropped, cut_characters=cut)
