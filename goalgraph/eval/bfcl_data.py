"""BFCL items: loading, deterministic sampling, and BFCL function docs as JSON-Schema tools.

The data lives outside the project (``../shared/data/bfcl`` beside the repository, or any folder
laid out like BFCL's ``bfcl_eval/data``): ``BFCL_v4_<category>.json`` holds one question per
line, ``possible_answer/BFCL_v4_<category>.json`` the accepted calls (irrelevance has none).
The parallel categories are not in the shared folder: ``goalgraph.eval.bfcl_fetch`` takes them
from BFCL's PyPI wheel into goalgraph's cache.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ARRAY_MAX_ITEMS",
    "CATEGORIES",
    "DEFAULT_CATEGORIES",
    "PARALLEL_CATEGORIES",
    "BfclDataError",
    "BfclItem",
    "enum_hint",
    "function_tool",
    "load_items",
    "mentioned",
    "sample_items",
    "to_json_schema",
]

PARALLEL_CATEGORIES = ("parallel", "parallel_multiple")
"""Categories whose answer is several calls at once, in any order."""
DEFAULT_CATEGORIES = ("simple_python", "multiple", "irrelevance")
"""The categories a run covers unless told otherwise (the ones in the shared data folder)."""
CATEGORIES = (*DEFAULT_CATEGORIES, *PARALLEL_CATEGORIES)
"""The BFCL categories this evaluation knows."""

_JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}
_KEPT_KEYWORDS = ("description", "enum", "minItems", "maxItems", "minimum", "maximum", "format")
_CHOICE_LEAD = re.compile(
    r"\b(?:options are|can be(?: one of)?|must be(?: one of)?|either|one of"
    r"|possible values(?: are)?|choose from|allowed values(?: are)?)\b:?\s*(.*)",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'([^']{1,40})'|\"([^\"]{1,40})\"")
_X_OR_Y = re.compile(r"^([A-Za-z][\w-]*)\s*,?\s+or\s+([A-Za-z][\w-]*)\b")
_WORD = re.compile(r"[a-z0-9]+")

ARRAY_MAX_ITEMS = 10
"""Most items a list argument may hold in constrained mode (BFCL's accepted lists hold at most
7); without a bound the model repeated list items until the token limit."""


class BfclDataError(ValueError):
    """The BFCL data folder or a category file is missing or malformed."""


@dataclass(frozen=True)
class BfclItem:
    """One BFCL question with its offered functions and accepted calls."""

    id: str
    """BFCL's id, e.g. ``simple_python_12``."""
    category: str
    """``simple_python``, ``multiple``, ``irrelevance``, ``parallel`` or ``parallel_multiple``."""
    messages: list[dict[str, str]]
    """The first turn's messages (``role``, ``content``)."""
    functions: list[dict[str, Any]]
    """The offered functions, in BFCL's documentation format."""
    accepted: list[dict[str, dict[str, list[Any]]]] | None
    """BFCL's ``ground_truth``; ``None`` for irrelevance, where no call is the right answer."""

    @property
    def question(self) -> str:
        """Return the user's text (all user messages of the turn, joined)."""
        return "\n".join(m["content"] for m in self.messages if m.get("role") == "user")


def load_items(data_dir: Path, category: str) -> list[BfclItem]:
    """Read every item of ``category`` from ``data_dir``.

    Raises:
        BfclDataError: Unknown category, missing folder or file, or an unreadable line.
    """
    if category not in CATEGORIES:
        raise BfclDataError(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    if not data_dir.is_dir():
        raise BfclDataError(f"BFCL data folder not found: {data_dir} (pass --data)")
    questions = _read_jsonl(data_dir / f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    if category != "irrelevance":
        rows = _read_jsonl(data_dir / "possible_answer" / f"BFCL_v4_{category}.json")
        answers = {row["id"]: row["ground_truth"] for row in rows}
    items = []
    for row in questions:
        if category != "irrelevance" and row["id"] not in answers:
            raise BfclDataError(f"no accepted answer for {row['id']} in {data_dir}")
        items.append(
            BfclItem(
                id=row["id"],
                category=category,
                messages=list(row["question"][0]),
                functions=list(row["function"]),
                accepted=answers.get(row["id"]),
            )
        )
    return items


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise BfclDataError(f"BFCL file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BfclDataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
    return rows


def sample_items(items: Sequence[BfclItem], limit: int | None, *, seed: int = 0) -> list[BfclItem]:
    """Return ``limit`` items drawn with a fixed seed, in file order (``None``: all items)."""
    if limit is None or limit >= len(items):
        return list(items)
    chosen = set(random.Random(seed).sample(range(len(items)), limit))
    return [item for index, item in enumerate(items) if index in chosen]


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a BFCL parameter schema to JSON Schema.

    Types map dict→object, float→number, tuple→array, any→string; BFCL-only keys such as
    ``optional`` and ``default`` are dropped (the default stays visible in descriptions).
    """
    kind = str(schema.get("type", "any"))
    out: dict[str, Any] = {"type": _JSON_TYPES.get(kind, kind)}
    for key in _KEPT_KEYWORDS:
        if key in schema:
            out[key] = schema[key]
    if isinstance(schema.get("items"), Mapping):
        out["items"] = to_json_schema(schema["items"])
    if isinstance(schema.get("properties"), Mapping):
        out["properties"] = {k: to_json_schema(v) for k, v in schema["properties"].items()}
        out["required"] = [k for k in schema.get("required", []) if k in out["properties"]]
        out["additionalProperties"] = False
    return out


def enum_hint(description: str) -> list[str] | None:
    """Return the choices a description lists ("Options are 'a', 'b'", "either X or Y"), if any.

    Only quoted values, or two bare words joined by "or", count: "e.g." lists are examples, not
    choices, and are left alone.
    """
    lead = _CHOICE_LEAD.search(description)
    if lead is None:
        return None
    tail = lead.group(1)
    quoted = [a or b for a, b in _QUOTED.findall(tail)]
    if len(quoted) >= 2:
        return list(dict.fromkeys(quoted))
    pair = _X_OR_Y.match(tail)
    if pair and pair.group(1).lower() != pair.group(2).lower():
        return [pair.group(1), pair.group(2)]
    return None


def mentioned(name: str, schema: Mapping[str, Any], question: str) -> bool:
    """Guess whether ``question`` names an optional parameter: one of its words, or a choice."""
    asked = set(_WORD.findall(question.lower()))
    words = [w for w in _WORD.findall(re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower())]
    if any(len(w) >= 3 and any(a.startswith(w) for a in asked) for w in words):
        return True
    choices = schema.get("enum") or []
    return any(str(c).lower() in question.lower() for c in choices if len(str(c)) >= 3)


def _bound_arrays(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every array in ``schema`` a ``maxItems`` (``ARRAY_MAX_ITEMS`` unless it has one)."""
    out = dict(schema)
    if out.get("type") == "array":
        out.setdefault("maxItems", ARRAY_MAX_ITEMS)
    if isinstance(out.get("items"), dict):
        out["items"] = _bound_arrays(out["items"])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _bound_arrays(v) for k, v in out["properties"].items()}
    return out


def function_tool(
    function: Mapping[str, Any],
    *,
    question: str = "",
    enums_from_hints: bool = True,
    prune_optional: bool = True,
    parameter_notes: bool = True,
) -> dict[str, Any]:
    """Turn one BFCL function doc into an OpenAI-format tool dict with a JSON-Schema body.

    Args:
        function: BFCL's ``{"name", "description", "parameters"}``.
        question: The request; with ``prune_optional``, optional parameters it does not
            mention are left out of the schema.
        enums_from_hints: Turn "can be X or Y" hints of string parameters into enums.
        prune_optional: Leave out optional parameters the question does not mention.
        parameter_notes: Keep the parameters' descriptions (the prompt shows them as notes).
    """
    params = to_json_schema(function.get("parameters") or {"type": "dict", "properties": {}})
    params.setdefault("properties", {})
    required = set(params.get("required", []))
    kept: dict[str, Any] = {}
    for key, sub in params["properties"].items():
        if enums_from_hints and sub.get("type") == "string" and "enum" not in sub:
            choices = enum_hint(str(sub.get("description", "")))
            if choices:
                sub = {**sub, "enum": choices}
        if prune_optional and key not in required and not mentioned(key, sub, question):
            continue
        if not parameter_notes:
            sub = {k: v for k, v in sub.items() if k != "description"}
        kept[key] = _bound_arrays(sub)
    params["properties"] = kept
    params["required"] = [k for k in params.get("required", []) if k in kept]
    return {
        "type": "function",
        "function": {
            "name": function["name"],
            "description": str(function.get("description", "")),
            "parameters": params,
        },
    }
