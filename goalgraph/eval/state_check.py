"""The ``state`` check: a condition on a JSON file a task's MCP server keeps in the task folder.

A server the task adds (``goalgraph.eval.servers``) keeps its state in a file of the task's
folder; after the run, a check reads one value of it by a dotted path, keys and list indexes::

    check:
      state:
        - {file: shop.json, path: products.widget.quantity, equals: 7}
        - {file: shop.json, path: orders.SO-1004.lines.0.sku, equals: widget}
        - {file: shop.json, path: orders, length: 4}
        - {file: shop.json, path: orders.SO-1002.status, contains: cancel}
        - {file: shop.json, path: restock_requests.RR-1, exists: false}

``equals`` compares JSON values (``7`` equals ``7.0``), ``contains`` is a case-insensitive
substring of a string, an element of a list or a key of an object, and ``length`` counts a
list's items, an object's keys or a string's characters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from goalgraph.eval.servers import check_state_path

__all__ = ["STATE_FAILURE_PREFIX", "StateCheck", "state_failures"]

_MISSING = object()


class StateCheck(BaseModel):
    """A condition on one value of a JSON state file in the task's folder."""

    model_config = ConfigDict(extra="forbid")

    file: str
    """The JSON file, relative to the task's folder (as seeded in ``server_state``)."""
    path: str = ""
    """Dot-separated keys and list indexes (``orders.SO-1001.lines.0.sku``); empty: the root."""
    exists: bool = True
    """``false``: the path must not exist (then no other condition may be given)."""
    equals: Any = None
    """The value it must equal (only when given; ``null`` is a value too)."""
    contains: Any = None
    """Text in a string (case-insensitive), an element of a list, or a key of an object."""
    length: int | None = None
    """How many items, keys or characters it has."""

    @field_validator("file")
    @classmethod
    def _inside(cls, value: str) -> str:
        return check_state_path(value)

    @model_validator(mode="after")
    def _consistent(self) -> StateCheck:
        conditions = {"equals", "contains", "length"} & self.model_fields_set
        if not self.exists and conditions:
            raise ValueError("a path that must not exist cannot have equals, contains or length")
        return self

    def where(self) -> str:
        """Return ``file:path`` for messages."""
        return f"{self.file}:{self.path}" if self.path else self.file


def _lookup(data: Any, path: str) -> tuple[Any, str]:
    """Return the value at ``path``, or ``_MISSING`` and what the deepest existing value holds."""
    value = data
    walked: list[str] = []
    for part in path.split(".") if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            where = ".".join(walked) or "the root"
            if isinstance(value, dict):
                keys = ", ".join(sorted(map(str, value))[:20]) or "no keys"
                return _MISSING, f"{where} has {keys}"
            if isinstance(value, list):
                return _MISSING, f"{where} is a list of {len(value)}"
            return _MISSING, f"{where} is {_show(value)}"
        walked.append(part)
    return value, ""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _contains(value: Any, needle: Any) -> bool:
    if isinstance(value, str):
        return str(needle).lower() in value.lower()
    if isinstance(value, dict):
        return str(needle) in value
    if isinstance(value, list):
        return needle in value
    return False


STATE_FAILURE_PREFIX = "state "
"""How every failure ``state_failures`` words begins."""


def state_failures(check: StateCheck, task_dir: Path) -> list[str]:
    """Return what does not hold of ``check`` in the task folder ``task_dir``, in words, each
    beginning with ``STATE_FAILURE_PREFIX``."""
    target = task_dir / check.file
    if not target.is_file():
        return [f"state file {check.file} does not exist"]
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"state file {check.file} is not readable JSON ({exc})"]
    value, context = _lookup(data, check.path)
    if not check.exists:
        return [] if value is _MISSING else [f"state {check.where()} exists, but must not"]
    if value is _MISSING:
        return [f"state {check.where()} does not exist ({context})"]
    failures = []
    if "equals" in check.model_fields_set and value != check.equals:
        failures.append(f"state {check.where()} is {_show(value)}, expected {_show(check.equals)}")
    if "contains" in check.model_fields_set and not _contains(value, check.contains):
        failures.append(
            f"state {check.where()} does not contain {_show(check.contains)} ({_show(value)})"
        )
    if check.length is not None:
        size = len(value) if isinstance(value, str | list | dict) else None
        if size != check.length:
            failures.append(
                f"state {check.where()} has length {size}, expected {check.length} ({_show(value)})"
            )
    return failures
