"""A task's own MCP servers: placeholders in their settings, and the state seeded for them.

A suite file (or one task) adds MCP servers to the agent through its ``spec``, in the
``mcpServers`` shape, and may seed their state (``server_state``: JSON files written into the
task's folder before the run)::

    spec:
      mcpServers:
        shop:
          command: "{python}"
          args: ["{suite_dir}/../servers/inventory_server.py", --state, "{task_dir}/shop.json"]
    server_state:
      shop.json: {products: {widget: {name: Widget, quantity: 7}}}
      # or a JSON or YAML file, relative to the suite file: shop.json: ../servers/seed.json

In the strings of ``mcpServers`` (command, args, env, url, headers) these placeholders are
replaced; any other ``{word}`` of lowercase letters and underscores is an error:

* ``{task_dir}``: the task's own temporary folder (checkpoints, memory, seeded server state);
* ``{workspace}``: the task's workspace, ``{task_dir}/workspace``;
* ``{python}``: the Python interpreter goalgraph runs on;
* ``{suite_dir}``: the folder of the suite file, filled in when the suite is loaded.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

__all__ = [
    "PLACEHOLDERS",
    "RESERVED_NAMES",
    "check_state_path",
    "fill_placeholders",
    "load_state_sources",
    "placeholders_in",
    "run_values",
    "seed_server_state",
    "server_state_unchanged",
]

PLACEHOLDERS: dict[str, str] = {
    "task_dir": "the task's own temporary folder",
    "workspace": "the task's workspace folder",
    "python": "the Python interpreter goalgraph runs on",
    "suite_dir": "the folder of the suite file",
}
"""The placeholders a server's settings may use, and what each stands for."""

RESERVED_NAMES = frozenset({"workspace", "checkpoints.sqlite", "memory.sqlite", "audit"})
"""What the runner itself keeps in a task's folder; seeded state may not overwrite it."""

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_SERVER_KEYS = ("mcpServers", "mcp_servers")


def _servers(spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(key, spec[key]) for key in _SERVER_KEYS if key in spec]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


def placeholders_in(spec: Mapping[str, Any]) -> set[str]:
    """Return the placeholder names used in the ``mcpServers`` strings of a spec override."""
    return {
        name
        for _, servers in _servers(spec)
        for text in _strings(servers)
        for name in _PLACEHOLDER.findall(text)
    }


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(item, values) for item in value]
    return value


def fill_placeholders(spec: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of a spec override with ``values`` filled into its ``mcpServers`` strings.

    Placeholders not in ``values`` are left as they are, so the suite directory can be filled in
    at load time and the task's folders at run time.

    Raises:
        ValueError: If the servers use a placeholder that is not in ``PLACEHOLDERS``.
    """
    unknown = sorted(placeholders_in(spec) - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        used = ", ".join("{" + name + "}" for name in unknown)
        raise ValueError(f"unknown placeholder {used} in mcpServers; known: {known}")
    filled = dict(spec)
    for key, servers in _servers(spec):
        filled[key] = _fill(servers, values)
    return filled


def run_values(task_dir: Path) -> dict[str, str]:
    """Return the values of the run-time placeholders for a task run in ``task_dir``."""
    return {
        "task_dir": str(task_dir),
        "workspace": str(task_dir / "workspace"),
        "python": sys.executable,
    }


def check_state_path(name: str) -> str:
    """Return ``name`` if it is a relative path inside the task folder the runner does not use.

    Raises:
        ValueError: If it is absolute, climbs out, or names one of ``RESERVED_NAMES``.
    """
    pure = PurePosixPath(name)
    if not name.strip() or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"state file {name!r} must be a relative path inside the task folder")
    if pure.parts[0] in RESERVED_NAMES:
        reserved = ", ".join(sorted(RESERVED_NAMES))
        raise ValueError(f"state file {name!r} would overwrite the runner's own ({reserved})")
    return name


def load_state_sources(files: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """Return ``files`` with each string value replaced by the JSON or YAML file it names.

    Args:
        files: State file name to its content, or to a ``.json`` / ``.yaml`` / ``.yml`` file
            holding it, relative to ``base_dir``.
        base_dir: The folder of the suite file.

    Raises:
        ValueError: If a named file is missing, of another type, or does not parse.
    """
    loaded: dict[str, Any] = {}
    for name, content in files.items():
        if not isinstance(content, str):
            loaded[name] = content
            continue
        source = base_dir / content
        if source.suffix not in (".json", ".yaml", ".yml"):
            raise ValueError(f"state of {name}: {content!r} is not a .json, .yaml or .yml file")
        try:
            text = source.read_text(encoding="utf-8")
            loaded[name] = json.loads(text) if source.suffix == ".json" else yaml.safe_load(text)
        except OSError as exc:
            raise ValueError(
                f"state of {name}: cannot read {source}: {exc.strerror or exc}"
            ) from None
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"state of {name}: {source} does not parse: {exc}") from None
    return loaded


def server_state_unchanged(files: Mapping[str, Any], task_dir: Path) -> bool:
    """Whether every seeded state file in ``task_dir`` still holds what ``seed_server_state``
    wrote (``False`` when nothing was seeded, or a file is gone or unreadable)."""
    if not files:
        return False
    for name, content in files.items():
        try:
            now = json.loads((task_dir / check_state_path(name)).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        if now != content:
            return False
    return True


def seed_server_state(files: Mapping[str, Any], task_dir: Path) -> None:
    """Write each seeded state file into ``task_dir`` as JSON (paths checked at load time)."""
    for name, content in files.items():
        target = task_dir / check_state_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=1, ensure_ascii=False), encoding="utf-8")
