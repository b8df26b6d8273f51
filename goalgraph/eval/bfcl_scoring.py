"""BFCL's AST-match rules for the simple, multiple, parallel and irrelevance categories.

A model's answer to a BFCL item is a list of calls, each ``{"function_name": {"arg": value}}``.
The rules, as the Berkeley Function Calling Leaderboard applies them to Python functions:

* simple and multiple: exactly one call; its name is the accepted function's; every required
  parameter is present; no parameter outside the function's documentation or the accepted
  answer; every value has the documented type (an int is accepted for a float) and is one of the
  accepted values (strings compared lower-cased with spaces and ``,./-_*^`` removed, also inside
  lists and dicts); a parameter of the accepted answer may be left out only where ``""`` is
  among its accepted values.
* parallel and parallel_multiple: as many calls as accepted calls, and every accepted call
  matched by exactly one call (by the rules above), in any order. BFCL pairs them greedily;
  this pairs them by a maximum matching, which differs only where one call would fit two
  accepted calls.
* irrelevance: the item passes exactly when no call is made.

This module is written from those rules; it does not import BFCL's own checker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FAILURE_KINDS",
    "Call",
    "FailureKind",
    "Verdict",
    "check_calls",
    "check_irrelevance",
    "check_parallel",
    "normalize_string",
]

FailureKind = Literal[
    "wrong_count",
    "wrong_function",
    "missing_argument",
    "extra_argument",
    "wrong_type",
    "wrong_value",
    "no_call",
    "call_when_none_fits",
    "unparsable",
    "token_limit",
]
"""Why an item failed; ``unparsable`` and ``token_limit`` are assigned by the runner."""

FAILURE_KINDS: tuple[FailureKind, ...] = (
    "wrong_function",
    "missing_argument",
    "extra_argument",
    "wrong_type",
    "wrong_value",
    "wrong_count",
    "no_call",
    "call_when_none_fits",
    "unparsable",
    "token_limit",
)
"""Every failure kind, in the order the reports list them."""

Call = Mapping[str, Mapping[str, Any]]
"""One call in BFCL's shape: ``{"function_name": {"param": value, ...}}``."""

_PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_STRIPPED = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one answer."""

    ok: bool
    """Whether the answer is accepted."""
    kind: FailureKind | None = None
    """Why it was not (``None`` when accepted)."""
    detail: str = ""
    """A one-line explanation of the failure."""


_PASS = Verdict(ok=True)


def _fail(kind: FailureKind, detail: str) -> Verdict:
    return Verdict(ok=False, kind=kind, detail=detail)


def normalize_string(text: str) -> str:
    """Lower-case ``text`` and drop spaces and ``,./-_*^``; single quotes become double."""
    return _STRIPPED.sub("", text).lower().replace("'", '"')


def check_irrelevance(calls: Sequence[Call]) -> Verdict:
    """Accept an irrelevance answer exactly when it makes no call."""
    if calls:
        return _fail("call_when_none_fits", f"called {next(iter(calls[0]), '?')!r}")
    return _PASS


def check_calls(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    accepted: Sequence[Mapping[str, Mapping[str, list[Any]]]],
) -> Verdict:
    """Check a simple or multiple answer against BFCL's accepted calls.

    Args:
        functions: The item's function documentation (BFCL format, ``parameters`` of type dict).
        calls: The model's calls, each ``{name: arguments}``.
        accepted: BFCL's ``ground_truth``: one ``{name: {param: [accepted values]}}``.
    """
    if not calls:
        return _fail("no_call", "no function was called")
    if len(calls) != len(accepted):
        return _fail("wrong_count", f"{len(calls)} calls, {len(accepted)} expected")
    expected_name, accepted_args = next(iter(accepted[0].items()))
    called_name, arguments = next(iter(calls[0].items()))
    if called_name != expected_name:
        return _fail("wrong_function", f"called {called_name!r}, expected {expected_name!r}")
    doc = next((fn for fn in functions if fn.get("name") == expected_name), None)
    if doc is None:
        return _fail("wrong_function", f"{expected_name!r} is not among the offered functions")
    return _check_arguments(doc.get("parameters") or {}, dict(arguments), accepted_args)


def check_parallel(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    accepted: Sequence[Mapping[str, Mapping[str, list[Any]]]],
) -> Verdict:
    """Check a parallel answer: the same count, and every accepted call matched by its own call
    (``check_calls``' per-call rules) in any order.

    A failure reports the first accepted call left unmatched, with the kind of the nearest miss:
    the verdict of an unmatched call to the same function, else ``wrong_function``.
    """
    if not calls:
        return _fail("no_call", "no function was called")
    if len(calls) != len(accepted):
        return _fail("wrong_count", f"{len(calls)} calls, {len(accepted)} expected")
    fits = [
        [check_calls(functions, [call], [expected]).ok for call in calls] for expected in accepted
    ]
    owner: dict[int, int] = {}  # call index -> accepted index
    for index in range(len(accepted)):
        if not _augment(index, fits, owner, set()):
            return _unmatched(functions, calls, accepted, index, owner)
    return _PASS


def _augment(index: int, fits: list[list[bool]], owner: dict[int, int], seen: set[int]) -> bool:
    """Find a call for accepted call ``index``, moving earlier pairs if need be (Kuhn)."""
    for call, fit in enumerate(fits[index]):
        if fit and call not in seen:
            seen.add(call)
            if call not in owner or _augment(owner[call], fits, owner, seen):
                owner[call] = index
                return True
    return False


def _unmatched(
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    accepted: Sequence[Mapping[str, Mapping[str, list[Any]]]],
    index: int,
    owner: Mapping[int, int],
) -> Verdict:
    expected = accepted[index]
    name = next(iter(expected))
    for position, call in enumerate(calls):
        if position not in owner and next(iter(call)) == name:
            verdict = check_calls(functions, [call], [expected])
            return _fail(verdict.kind or "wrong_value", f"call {index + 1}: {verdict.detail}")
    return _fail("wrong_function", f"no call matches accepted call {index + 1} ({name!r})")


def _check_arguments(
    parameters: Mapping[str, Any],
    arguments: Mapping[str, Any],
    accepted: Mapping[str, list[Any]],
) -> Verdict:
    properties: Mapping[str, Any] = parameters.get("properties") or {}
    for name in parameters.get("required") or []:
        if name not in arguments:
            return _fail("missing_argument", f"required parameter {name!r} is missing")
    for name, value in arguments.items():
        if name not in properties or name not in accepted:
            return _fail("extra_argument", f"unexpected parameter {name!r}")
        verdict = _check_value(name, value, properties[name], accepted[name])
        if not verdict.ok:
            return verdict
    for name, values in accepted.items():
        if name not in arguments and "" not in values:
            return _fail("missing_argument", f"parameter {name!r} is missing")
    return _PASS


def _check_value(name: str, value: Any, doc: Mapping[str, Any], accepted: list[Any]) -> Verdict:
    declared = str(doc.get("type", "any"))
    expected = _PYTHON_TYPES.get(declared, str)
    if declared == "float" and type(value) is int:
        value = float(value)
    answer_type = _accepted_type(accepted)
    # BFCL records a variable name where an answer may pass one: the accepted values are then
    # strings although the documented type is not, and the value is compared as a string.
    is_variable = answer_type is str and expected is not str and type(value) is str
    if not is_variable:
        if type(value) is not expected:
            return _fail("wrong_type", f"{name!r} should be {declared}, got {type(value).__name__}")
        item_doc = doc.get("items") if declared in ("array", "tuple") else None
        if isinstance(item_doc, Mapping) and not _items_have_type(value, item_doc, accepted):
            return _fail("wrong_type", f"{name!r} holds items of the wrong type")
    if _value_accepted(value, accepted, expected if not is_variable else str, doc):
        return _PASS
    return _fail("wrong_value", f"{name!r} = {value!r}, accepted {accepted!r}")


def _accepted_type(accepted: Sequence[Any]) -> type | None:
    for value in accepted:
        if value != "":
            return type(value)
    return None


def _items_have_type(value: Any, item_doc: Mapping[str, Any], accepted: list[Any]) -> bool:
    declared = str(item_doc.get("type", "any"))
    expected = _PYTHON_TYPES.get(declared, str)
    item_answer_type = next(
        (type(item) for answer in accepted if isinstance(answer, list) for item in answer), None
    )
    for item in value:
        if declared == "float" and type(item) is int:
            continue
        if type(item) is expected:
            continue
        if item_answer_type is str and type(item) is str:
            continue
        return False
    return True


def _value_accepted(
    value: Any, accepted: list[Any], expected: type, doc: Mapping[str, Any]
) -> bool:
    if expected is str:
        return normalize_string(value) in {
            normalize_string(answer) for answer in accepted if isinstance(answer, str)
        }
    if expected is dict:
        return any(_dict_matches(value, answer) for answer in accepted if isinstance(answer, dict))
    if expected is list:
        items = doc.get("items")
        if isinstance(items, Mapping) and items.get("type") == "dict":
            return any(
                _dict_list_matches(value, answer) for answer in accepted if isinstance(answer, list)
            )
        return _normalized_list(value) in [
            _normalized_list(answer) for answer in accepted if isinstance(answer, list)
        ]
    return value in accepted


def _normalized(value: Any) -> Any:
    return normalize_string(value) if isinstance(value, str) else value


def _normalized_list(values: list[Any]) -> list[Any]:
    return [_normalized(value) for value in values]


def _dict_matches(value: Mapping[str, Any], answer: Mapping[str, list[Any]]) -> bool:
    for key, item in value.items():
        if key not in answer:
            return False
        if _normalized(item) not in [_normalized(option) for option in answer[key]]:
            return False
    return all(key in value or "" in options for key, options in answer.items())


def _dict_list_matches(value: list[Any], answer: list[Any]) -> bool:
    if len(value) != len(answer):
        return False
    return all(
        isinstance(item, Mapping)
        and isinstance(expected, Mapping)
        and _dict_matches(item, expected)
        for item, expected in zip(value, answer, strict=True)
    )
