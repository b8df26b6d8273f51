"""What helps the model recover from a failed call: the value the error lists that it meant.

Many tools answer a bad identifier with the valid ones ("no product with SKU 'walnut knobs';
SKUs: bolt-m6, ..., knob-walnut, ..."). goalgraph's own tools go further and name the nearest
("did you mean 'notes/todo.txt'?"), but a third-party tool leaves the picking to the model, and a
small model often calls again with the same value. ``listed_alternative`` does the picking for
any tool: it compares each string argument of the failed call with the values its error lists,
word by word and in any order ("walnut knobs" is "knob-walnut"), and returns the one clear match.

Example:
    >>> error = "no product with SKU 'walnut knobs'; SKUs: bolt-m6, hinge-brass, knob-walnut"
    >>> listed_alternative({"sku": "walnut knobs"}, error)
    ('sku', 'knob-walnut')
    >>> listed_alternative({"sku": "oak table"}, error) is None
    True
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MATCH_CUTOFF",
    "listed_alternative",
    "with_echoed_alternative",
    "with_listed_alternative",
]

MATCH_CUTOFF = 0.8
"""Lowest similarity (difflib's ratio of the sorted, singular words) of a suggestion."""
_MARGIN = 0.1
"""How much better than the runner-up the best match must be: two near ties suggest neither."""
_MAX_ITEM_CHARS = 60
_TOKEN = re.compile(r"[A-Za-z0-9][\w.\-/@]*[A-Za-z0-9]")
_LIST_SEPARATORS = re.compile(r"[,;:\n()\[\]]")
_WORDS = re.compile(r"[a-z0-9]+")


def listed_alternative(args: Mapping[str, Any], error: str) -> tuple[str, str] | None:
    """Return ``(argument, value)``: a value ``error`` lists that a string argument of the failed
    call clearly meant, or ``None``.

    A value in a display form, "Abrasivo SA (abrasivo)", copied from another tool's output,
    suggests its part in brackets when the error lists that part by itself (else the part
    before them): tools often show "name (id)" but look up only one of the two.

    Otherwise a listed value matches when its words, singular and in any order, are close to the
    argument's (difflib ratio at least ``MATCH_CUTOFF``) and no other listed value comes near
    (within ``_MARGIN``). A value the call already used is never suggested, and an error that
    already suggests one ("did you mean") is left alone.
    """
    if "did you mean" in error.casefold():
        return None
    for name, value in args.items():
        part = _listed_part(value, error) if isinstance(value, str) else None
        if part is not None:
            return name, part
    strings = [value for value in args.values() if isinstance(value, str) and value.strip()]
    for value in strings:  # the error quoting the call's own value lists nothing new
        error = re.sub(_standalone(value.strip()), " ", error, flags=re.IGNORECASE)
    candidates = _listed_values(error)
    for name, value in args.items():
        if not isinstance(value, str) or not value.strip():
            continue
        wanted = _words_key(value)
        if not wanted:
            continue
        scored = sorted(
            (
                (difflib.SequenceMatcher(None, wanted, _words_key(c), autojunk=False).ratio(), c)
                for c in candidates
                if c.casefold() != value.strip().casefold()
            ),
            reverse=True,
        )
        if not scored or scored[0][0] < MATCH_CUTOFF:
            continue
        best_score, best = scored[0]
        others = (score for score, c in scored[1:] if _words_key(c) != _words_key(best))
        if best_score - next(others, 0.0) >= _MARGIN:
            return name, best
    return None


def with_listed_alternative(error: str, args: Mapping[str, Any]) -> str:
    """Return ``error`` with "did you mean ...?" added when ``listed_alternative`` finds one."""
    found = listed_alternative(args, error)
    if found is None:
        return error
    name, value = found
    return f"{error}; did you mean {name}={value!r}?"


def with_echoed_alternative(output: str, args: Mapping[str, Any]) -> str:
    """Return a successful call's ``output`` with "did you mean ...?" added when it quotes one of
    the call's string arguments back and lists a value that argument clearly meant.

    A search that finds nothing often succeeds with a miss: "no product matches 'bar clamps';
    SKUs: bolt-m6, clamp-bar-60, ...". The quoted argument is what tells such a miss from a result
    that merely lists values; a small model otherwise takes the first listed value.
    """
    echoed = any(
        f"{quote}{value.strip()}{quote}".casefold() in output.casefold()
        for value in args.values()
        if isinstance(value, str) and value.strip()
        for quote in "'\""
    )
    return with_listed_alternative(output, args) if echoed else output


_DISPLAY_FORM = re.compile(r"^\s*(?P<name>[^()]+?)\s*\((?P<key>[^()]+)\)\s*$")
"""A value shown as "name (id)"."""


def _listed_part(value: str, error: str) -> str | None:
    """Return the part of a "name (id)" ``value`` that ``error``, quoting ``value``, lists
    elsewhere: the id in brackets, else the name; ``None`` for another value or neither."""
    shown = _DISPLAY_FORM.match(value)
    if shown is None:
        return None
    unquoted = error
    for quote in "'\"`":
        unquoted = unquoted.replace(f"{quote}{value.strip()}{quote}", " ")
    if unquoted == error:  # The error is not about this value.
        return None
    for part in (shown["key"].strip(), shown["name"].strip()):
        if re.search(_standalone(part), unquoted, re.IGNORECASE):
            return part
    return None


def _standalone(text: str) -> str:
    """Return a pattern of ``text`` as a whole value: not inside a longer identifier."""
    return rf"(?<![\w\-]){re.escape(text)}(?![\w\-])"


def _listed_values(error: str) -> set[str]:
    """The values an error may list: its identifier-like tokens and its comma-separated items."""
    items = {item.strip().strip("'\"`") for item in _LIST_SEPARATORS.split(error)}
    values = {item for item in items if 0 < len(item) <= _MAX_ITEM_CHARS}
    values.update(_TOKEN.findall(error))
    return {value for value in values if _words_key(value)}


def _words_key(text: str) -> str:
    """The words of ``text``, lower case, singular (a final "s" dropped), sorted."""
    return " ".join(sorted(_singular(word) for word in _WORDS.findall(text.casefold())))


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
