"""Argument grounding: did a tool call's values come from the conversation, or were they invented?

A grammar guarantees a well-formed call, not a sensible one. Asked something no offered tool
can do, a small model still fills the closest tool's required arguments, and it fills them with
values nobody gave it (``answers=[1, 2, ..., 10]`` for "What type of personality am I?"). A call
to a tool that fits copies its inputs from the request instead. So a call is *grounded* when the
value of every required, free-form argument appears in the conversation:

* a number, when the text mentions it (``-$100`` is -100, ``3%`` also 0.03, ``2 million``
  also 2,000,000, ``five`` is 5), or when it is the parameter's default;
* a string, when each of its words of three or more characters starts like a word of the text
  (``Lions`` grounds ``Lion``), a date when its year, month and day are all mentioned;
* a list or object, when all of its values are grounded.

Values the grammar already confines (enums, booleans, ``const``) and optional arguments are not
checked by ``ungrounded_arguments``. Of BFCL's accepted calls, 90% (simple_python) and 91.5%
(multiple) pass these rules; the rest need a fact the request leaves out (gravity is 9.81, a deck
has 52 cards, "US dollars" is USD). ``benchmarks/bfcl_grounding.py`` measures that and what the
rules stop.

Optional arguments have their own test, ``trim_invented_optional``: a small model that sees an
optional parameter tends to fill it, with a value nobody gave (``year=2023`` for "the population
of pandas in China", ``team="Boston Celtics"`` for "LeBron James's career stats"), where leaving
it out would let the tool's default apply. So an optional argument whose value the conversation
does not mention is left out of the call; here an enum value counts as a word to find (a "patio"
grounds ``amenities=["Patio"]``) and a list keeps only its grounded items.

Example:
    >>> schema = {"properties": {"x": {"type": "number"}}, "required": ["x"]}
    >>> ungrounded_arguments({"x": 7}, schema, "What is the square root of 49?")
    ['x']
    >>> ungrounded_arguments({"x": 49}, schema, "What is the square root of 49?")
    []
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["mentioned_numbers", "trim_invented_optional", "ungrounded_arguments"]

_NUMBER = re.compile(
    r"(?<!\d)(?P<sign>(?<![\w)])-\s?)?(?P<currency>\$\s?)?(?P<digits>\d+(?:,\d+)*(?:\.\d+)?|(?<![\w.])\.\d+)"
    r"(?:e(?P<exponent>[-+]?\d+))?"
    r"\s?(?P<scale>%|percent\b|hundred\b|thousand\b|million\b|billion\b|trillion\b|[kmb]n?\b)?",
    re.IGNORECASE,
)
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_MONEY_SCALES = {"k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9}  # only after a "$": "100 m" is metres
_NUMBER_WORDS = {
    "zero": 0.0, "one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0,
    "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "eleven": 11.0, "twelve": 12.0,
}  # fmt: skip
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_DMY_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_WORD = re.compile(r"[^\W_]+")


def mentioned_numbers(text: str) -> set[float]:
    """Return the numbers ``text`` mentions, with the values its units and scale words imply."""
    found: set[float] = set()
    for match in _NUMBER.finditer(text):
        for reading in _readings(match["digits"]):
            value = float(f"{reading}e{match['exponent'] or 0}")
            if match["sign"]:
                value = -value
            found.add(value)
            scale = (match["scale"] or "").lower()
            if scale in ("%", "percent"):
                found.add(value / 100)
            elif scale in _SCALES:
                found.add(value * _SCALES[scale])
            elif scale in _MONEY_SCALES and match["currency"]:
                found.add(value * _MONEY_SCALES[scale])
    found.update(_NUMBER_WORDS[w] for w in _words(text) if w in _NUMBER_WORDS)
    return found


def _readings(digits: str) -> list[str]:
    """``1,250`` may be a thousands separator or a list (``[200,300]``): return every reading."""
    if "," not in digits:
        return [digits]
    return [digits.replace(",", ""), *digits.split(",")]


def ungrounded_arguments(
    arguments: Mapping[str, Any], parameters: Mapping[str, Any], context: str
) -> list[str]:
    """Return the required, free-form arguments whose values ``context`` does not mention.

    Args:
        arguments: The call's arguments.
        parameters: The tool's JSON Schema for its arguments (``properties``, ``required``).
        context: The conversation the values should come from.
    """
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    grounds = _Grounds(context)
    invented = []
    for name, value in arguments.items():
        schema = properties.get(name) or {}
        if name not in required or _confined(schema) or value == schema.get("default", object()):
            continue
        if not grounds.holds(value):
            invented.append(name)
    return invented


def trim_invented_optional(
    arguments: Mapping[str, Any], parameters: Mapping[str, Any], context: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Leave out the optional arguments whose values ``context`` does not mention.

    A value equal to the parameter's default, a boolean, ``None`` and anything not a number,
    string, list or object is kept. A string of short words only ("Wi-Fi") must find them
    all in the text. A list keeps its grounded items and is left out when none is.

    Args:
        arguments: The call's arguments.
        parameters: The tool's JSON Schema for its arguments (``properties``, ``required``).
        context: The conversation the values should come from.

    Returns:
        The arguments to call with, and the ones left out (name to the value the model gave).
    """
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    grounds = _Grounds(context, short_words=True)
    kept: dict[str, Any] = {}
    left_out: dict[str, Any] = {}
    for name, value in arguments.items():
        schema = properties.get(name)
        if name in required or schema is None or value == schema.get("default", object()):
            kept[name] = value
        elif isinstance(value, list) and value:
            items = [item for item in value if grounds.holds(item)]
            if items:
                kept[name] = items
            if len(items) < len(value):
                left_out[name] = value
        elif grounds.holds(value):
            kept[name] = value
        else:
            left_out[name] = value
    return kept, left_out


def _confined(schema: Mapping[str, Any]) -> bool:
    return "enum" in schema or "const" in schema or schema.get("type") == "boolean"


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Grounds:
    """What a context mentions: its numbers and its words."""

    def __init__(self, context: str, *, short_words: bool = False) -> None:
        # short_words: a string of short words only ("Wi-Fi") must find them in the text;
        # otherwise it holds.
        self.numbers = mentioned_numbers(context)
        self.words = set(_words(context))
        self.short_words = short_words

    def holds(self, value: Any) -> bool:
        if value is None or isinstance(value, bool):
            return True
        if isinstance(value, int | float):
            return self._number(float(value))
        if isinstance(value, str):
            return self._string(value)
        if isinstance(value, Mapping):
            return all(self.holds(item) for item in value.values())
        if isinstance(value, list | tuple):
            return all(self.holds(item) for item in value)
        return True

    def _number(self, value: float) -> bool:
        return any(math.isclose(value, n, rel_tol=1e-9, abs_tol=1e-15) for n in self.numbers)

    def _string(self, value: str) -> bool:
        text = value.strip()
        dates = _dates(text)
        if dates is not None:
            return any(self._date(*date) for date in dates)
        if _NUMBER.fullmatch(text):
            return all(self._number(n) for n in mentioned_numbers(text))
        words = _words(text)
        long_words = [word for word in words if len(word) >= 3]
        if not long_words and self.short_words:
            return all(word in self.words for word in words)
        return all(self._word(word) for word in long_words)

    def _word(self, word: str) -> bool:
        if word.isdigit():
            return self._number(float(word))
        return any(_same_stem(word, known) for known in self.words)

    def _date(self, year: int, month: int, day: int) -> bool:
        if not 1 <= month <= 12:
            return False
        named = any(word.startswith(_MONTHS[month - 1]) for word in self.words)
        return (
            self._number(float(year))
            and self._number(float(day))
            and (named or self._number(float(month)))
        )


def _same_stem(a: str, b: str) -> bool:
    """Whether two words share their first five letters (all of the shorter, if shorter)."""
    size = min(5, len(a), len(b))
    return size >= 3 and a[:size] == b[:size]


def _dates(text: str) -> list[tuple[int, int, int]] | None:
    """Return the (year, month, day) readings of a date string, or ``None`` if it is no date."""
    iso = _ISO_DATE.match(text)
    if iso:
        return [(int(iso[1]), int(iso[2]), int(iso[3]))]
    other = _DMY_DATE.match(text)
    if other:
        first, second, year = int(other[1]), int(other[2]), int(other[3])
        return [(year, first, second), (year, second, first)]  # month-first or day-first
    return None
