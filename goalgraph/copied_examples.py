"""Argument values a model copied from a tool's own description instead of the goal.

Tool authors show a value's form by example: "The supplier's id or name, e.g. hingeco or Hinge &
Co", "A workspace path, e.g. notes/todo.txt". A small model asked to fill in the argument often
copies the example: Qwen2.5-Coder-0.5B, asked for the email of oak varnish's supplier, called
``get_supplier(supplier="hingeco or Hinge & Co")``. ``copied_example`` finds such a value: one that
is (a part of) an example in the argument's description and that neither the goal nor any tool
result of the run mentions. It reads only the schema, so a third-party tool's examples count too.

Example:
    >>> schema = {"required": ["supplier"], "properties": {"supplier": {"type": "string",
    ...     "description": "The supplier's id or name, e.g. hingeco or Hinge & Co"}}}
    >>> copied_example({"supplier": "hingeco or Hinge & Co"}, schema, "Who supplies varnish?")
    ('supplier', 'hingeco or Hinge & Co')
    >>> copied_example({"supplier": "hingeco"}, schema, "Email Hingeco about hinges") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["copied_example", "description_examples"]

_EXAMPLE = re.compile(r"\b(?:e\.g\.|eg\.|for example|for instance|such as)[:,]?\s+", re.I)
_EXAMPLE_END = re.compile(r"[()\[\];]|\.(?:\s|$)")
_ALTERNATIVES = re.compile(r"\s*(?:,|\bor\b|\band\b|/(?=\s))\s*", re.I)


def description_examples(description: str) -> set[str]:
    """Return the example values ``description`` gives, each whole and each alternative of it
    ("e.g. hingeco or Hinge & Co": that text, "hingeco" and "Hinge & Co"), quotes stripped."""
    found: set[str] = set()
    for match in _EXAMPLE.finditer(description):
        rest = description[match.end() :]
        end = _EXAMPLE_END.search(rest)
        text = (rest[: end.start()] if end else rest).strip()
        for value in (text, *_ALTERNATIVES.split(text)):
            value = value.strip().strip("'\"`").strip()
            if value:
                found.add(value)
    return found


def copied_example(
    args: Mapping[str, Any], schema: Mapping[str, Any], seen: str
) -> tuple[str, str] | None:
    """Return ``(argument, value)`` for the first required string argument whose value is an
    example in its own description (``description_examples``, case aside) that ``seen`` (the
    goal and the run's tool results) does not mention; ``None`` if there is none.

    Only required arguments count: they name what the call acts on (a SKU, a path). An optional
    one's example is often a fine value ("reason: e.g. delivery, damaged, stocktake").
    """
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    seen = seen.casefold()
    for name, value in args.items():
        if name not in required or not isinstance(value, str) or not value.strip():
            continue
        description = (properties.get(name) or {}).get("description") or ""
        examples = {example.casefold() for example in description_examples(description)}
        wanted = value.strip().casefold()
        if wanted in examples and wanted not in seen:
            return name, value
    return None
