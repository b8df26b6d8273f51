"""The agent task suite as data: YAML files of tasks, validated with pydantic.

A suite file holds a list of tasks and, optionally, a default ``kind`` and spec overrides for all
of them::

    kind: arithmetic
    tasks:
      - id: product
        goal: What is 12*(3+4)?
        check: {answer_number: 84}
        script:
          - plan: [{description: Compute 12*(3+4), tool: calculator}]
          - {tool: calculator, args: {expression: 12*(3+4)}}

Each task has an id, a kind, a goal, seed files (``files``; ``databases`` for SQLite files built
from SQL), optional ``spec`` overrides (for example ``safety: {require_approval: [write_file]}``),
the ``approval`` decision the runner gives when the run asks for one, a deterministic ``check``
(``goalgraph.eval.checks``) and a ``script``: the ideal trajectory for the scripted model, so
that a scripted run tests the runner, the checks and the graph end to end.

A task may also

* add MCP servers through ``spec: {mcpServers: ...}``, with ``{task_dir}``-style placeholders,
  and seed their state with ``server_state`` (``goalgraph.eval.servers``); the file level's
  ``server_state`` is merged under the task's, file by file and key by key;
* run ``before`` goals first, in the same task folder with long-term memory on, each with its own
  script, so that its goal can ask for something an earlier run was told;
* say its ``split``: ``tuning`` (the default: tasks looked at while tuning the agent) or
  ``heldout`` (tasks kept for measuring it); a file may set the default ``split`` of its tasks;
* be a team task: ``team`` holds a team spec (``agents:``, ``team:`` and the team's ``limits`` and
  ``safety``), inline or as the path of its YAML file relative to the suite file, and the task
  runs with ``goalgraph.teams.Team`` instead of ``Agent``. Its ``script`` is then a mapping from
  each agent's name to that agent's turns, plus ``team`` for the team's own model (the
  orchestrator's plans, whose ``tool`` names the agent of each step)::

    team: teams/reader_writer.yaml
    script:
      team: [{plan: [{description: Read prices.txt, tool: reader}, ...]}]
      reader: [{plan: [...]}, {tool: read_file, args: {path: prices.txt}}]
      writer: [...]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from goalgraph.eval.checks import CheckSpec
from goalgraph.eval.servers import check_state_path, fill_placeholders, load_state_sources
from goalgraph.testing import ScriptedChatModel, final_answer, plan, step_done, tool_call

__all__ = [
    "SPLITS",
    "TEAM_SCRIPT",
    "EarlierRun",
    "PlanStepSpec",
    "ScriptTurn",
    "Split",
    "SuiteError",
    "SuiteFile",
    "TaskSpec",
    "default_suite_dir",
    "load_suite",
    "merge_overrides",
    "scripted_member_models",
    "scripted_model",
    "seed_workspace",
    "team_spec_of",
]


Split = Literal["tuning", "heldout"]
"""Which part of the suite a task belongs to: ``tuning`` tasks were looked at while tuning the
agent; ``heldout`` tasks measure it."""
SPLITS: tuple[Split, ...] = ("tuning", "heldout")
TEAM_SCRIPT = "team"
"""The key of a team task's script that holds the turns of the team's own model."""


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, the task and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanStepSpec(_Strict):
    """One step of a scripted plan."""

    description: str = Field(min_length=1)
    """What the step does."""
    tool: str = "none"
    """The tool the step uses, or ``none``."""
    depends_on: list[int] = Field(default_factory=list)
    """1-based numbers of earlier steps of the same plan."""


class ScriptTurn(_Strict):
    """One scripted model turn: exactly one of ``plan``, ``tool``, ``step_done``, ``final_answer``.

    A ``plan`` answers the planner (and the replanner); the others answer think.
    """

    plan: list[PlanStepSpec] | None = None
    """The steps of a plan."""
    tool: str | None = None
    """The name of a tool to call, with ``args``."""
    args: dict[str, Any] = Field(default_factory=dict)
    """The tool call's arguments."""
    step_done: str | None = None
    """Finish the current step with this result."""
    final_answer: str | None = None
    """Answer the goal."""

    @model_validator(mode="after")
    def _exactly_one_action(self) -> ScriptTurn:
        given = [
            name
            for name in ("plan", "tool", "step_done", "final_answer")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a script turn needs exactly one of plan, tool, step_done, final_answer "
                f"(got {', '.join(given) or 'none'})"
            )
        if self.args and self.tool is None:
            raise ValueError("args belong to a tool turn")
        return self

    def to_message(self) -> AIMessage:
        """Return the ``AIMessage`` the scripted model answers with."""
        if self.plan is not None:
            return plan(*(step.model_dump() for step in self.plan))
        if self.tool is not None:
            call = tool_call(self.tool)  # Not tool_call(tool, **args): an argument may be "name".
            call.tool_calls[0]["args"] = dict(self.args)
            return call
        if self.step_done is not None:
            return step_done(self.step_done)
        assert self.final_answer is not None
        return final_answer(self.final_answer)


def _scripted_tools(turns: Sequence[ScriptTurn]) -> list[str]:
    names: list[str] = []
    for turn in turns:
        if turn.tool is not None and turn.tool not in names:
            names.append(turn.tool)
    return names


def _check_state_files(files: dict[str, Any]) -> dict[str, Any]:
    for name in files:
        check_state_path(name)
    return files


class EarlierRun(_Strict):
    """A run of a task before its own goal, in the same folder, with long-term memory on."""

    goal: str = Field(min_length=1)
    """What the user asked then."""
    approval: Literal["approve", "deny"] = "deny"
    """What the runner answers when that run asks for approval."""
    script: list[ScriptTurn] = Field(default_factory=list)
    """That run's ideal trajectory for the scripted model."""


class TaskSpec(_Strict):
    """One task: a goal, its workspace, its settings, its check and its ideal trajectory."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Unique within the suite; names the task in tables and results."""
    kind: str = ""
    """The group it is reported in (``arithmetic``, ``files``...); defaults to the file's."""
    goal: str = Field(min_length=1)
    """What the user asks."""
    files: dict[str, str] = Field(default_factory=dict)
    """Seed text files: workspace path to content."""
    databases: dict[str, str] = Field(default_factory=dict)
    """Seed SQLite files: workspace path to the SQL script that builds it."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """``AgentSpec`` overrides, merged over the suite's (e.g. ``limits``, ``safety``,
    ``mcpServers`` with placeholders such as ``{task_dir}``)."""
    server_state: dict[str, Any] = Field(default_factory=dict)
    """JSON state files of the task's MCP servers: a path in the task folder to its content, or
    to a ``.json`` / ``.yaml`` file (relative to the suite file) that holds it."""
    before: list[EarlierRun] = Field(default_factory=list)
    """Goals run first, in order, in the same task folder with long-term memory on."""
    split: Split = "tuning"
    """``tuning`` or ``heldout`` (default: the file's ``split``, else ``tuning``)."""
    approval: Literal["approve", "deny"] = "deny"
    """What the runner answers when the run asks for approval."""
    check: CheckSpec
    """What must hold after the run."""
    needs_tools: list[str] | None = None
    """Tools a solution needs, for failure analysis; default: the tools the script calls."""
    team: str | dict[str, Any] | None = None
    """A team spec (``agents:``, ``team:``, its ``limits`` and ``safety``), or the path of its YAML
    file relative to the suite file; the task then runs with a ``Team``. ``load_suite`` reads a
    path, so a loaded task always holds the mapping."""
    script: list[ScriptTurn] | dict[str, list[ScriptTurn]] = Field(default_factory=list)
    """The ideal trajectory for the scripted model; for a team task, each agent's turns by its
    name, and the team model's under ``team``."""

    @field_validator("files", "databases")
    @classmethod
    def _relative_paths(cls, paths: dict[str, str]) -> dict[str, str]:
        for name in paths:
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts or not name.strip():
                raise ValueError(f"seed path {name!r} must be relative, inside the workspace")
        return paths

    @field_validator("server_state")
    @classmethod
    def _state_paths(cls, files: dict[str, Any]) -> dict[str, Any]:
        return _check_state_files(files)

    @model_validator(mode="after")
    def _team_fits_script(self) -> TaskSpec:
        if self.team is None:
            if isinstance(self.script, dict):
                raise ValueError(
                    "a script by agent name is for a team task: add 'team:' or make the script "
                    "a list of turns"
                )
            return self
        if self.before:
            raise ValueError("before runs are for single-agent tasks, not team tasks")
        if isinstance(self.script, list) and self.script:
            raise ValueError(
                "a team task's script maps each agent's name (and 'team', for the team's own "
                "model) to its turns"
            )
        return self

    def is_team(self) -> bool:
        """Whether the task runs with a team of agents."""
        return self.team is not None

    def agent_scripts(self) -> dict[str, list[ScriptTurn]]:
        """Return a team task's script by agent (``team``: the team's own model); ``{}`` else."""
        return dict(self.script) if isinstance(self.script, dict) else {}

    def own_script(self) -> list[ScriptTurn]:
        """Return the turns of the model the task's goal starts with: a single agent's script,
        or a team task's ``team`` turns."""
        if isinstance(self.script, dict):
            return list(self.script.get(TEAM_SCRIPT, []))
        return list(self.script)

    def required_tools(self) -> list[str]:
        """Return ``needs_tools``, or else the tools the script of its own goal calls, in order.

        For a team task, the tools its members' scripts call (not the turns of the team's own
        model, nor the debate judge's verdict, which are structured output, not tool calls).
        """
        if self.needs_tools is not None:
            return list(self.needs_tools)
        if isinstance(self.script, dict):
            team = self.team if isinstance(self.team, dict) else {}
            judge = (team.get("team") or {}).get("judge")
            members = [
                turn
                for name, turns in self.script.items()
                if name not in (TEAM_SCRIPT, judge)
                for turn in turns
            ]
            return _scripted_tools(members)
        return _scripted_tools(self.script)

    def all_turns(self) -> list[ScriptTurn]:
        """Return the scripts of the ``before`` runs and of the task's own goal, in run order
        (a team task's: every agent's turns, the team's own first)."""
        if isinstance(self.script, dict):
            scripts = self.agent_scripts()
            own = scripts.pop(TEAM_SCRIPT, [])
            return [*own, *(turn for turns in scripts.values() for turn in turns)]
        return [turn for earlier in self.before for turn in earlier.script] + list(self.script)

    def scripted(self) -> bool:
        """Whether the task has a script for its own goal and for every earlier run."""
        return bool(self.script) and all(earlier.script for earlier in self.before)


class SuiteFile(_Strict):
    """The top level of a suite file."""

    kind: str | None = None
    """The default kind of its tasks."""
    split: Split | None = None
    """The default split of its tasks."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """``AgentSpec`` overrides for every task of the file."""
    server_state: dict[str, Any] = Field(default_factory=dict)
    """State files seeded for every task of the file (a task's own merge over them)."""
    tasks: list[TaskSpec] = Field(min_length=1)
    """The tasks."""


def default_suite_dir() -> Path | None:
    """Return ``benchmarks/tasks/`` of the source checkout goalgraph runs from, if there is one."""
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "tasks"
    return folder if folder.is_dir() else None


def load_suite(paths: Iterable[str | Path]) -> list[TaskSpec]:
    """Load and validate tasks from YAML files and folders (every ``*.yaml`` in a folder).

    Returns the tasks in file order, each with its kind filled in and the file's ``spec``
    merged under its own.

    Raises:
        SuiteError: If a file is missing, not YAML, does not match the schema, or two tasks
            share an id.
    """
    tasks: list[TaskSpec] = []
    for file in _suite_files(paths):
        tasks.extend(_load_file(file))
    seen: dict[str, int] = {}
    for task in tasks:
        seen[task.id] = seen.get(task.id, 0) + 1
    duplicates = sorted(name for name, count in seen.items() if count > 1)
    if duplicates:
        raise SuiteError(f"task ids must be unique; repeated: {', '.join(duplicates)}")
    return tasks


def _suite_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise SuiteError(f"no *.yaml suite files in {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SuiteError(f"suite file {path} does not exist")
    if not files:
        raise SuiteError("no suite files given")
    return files


def _load_file(path: Path) -> list[TaskSpec]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"cannot read suite file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"suite file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(
            f"suite file {path} must hold a mapping with a 'tasks' list, not {type(data).__name__}"
        )
    try:
        suite = SuiteFile.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(f"invalid suite file {path}:\n{_describe(exc, data)}") from None
    try:
        _check_state_files(suite.server_state)
        file_state = load_state_sources(suite.server_state, path.parent)
    except ValueError as exc:
        raise SuiteError(f"invalid suite file {path}: server_state: {exc}") from None
    tasks = []
    for task in suite.tasks:
        kind = task.kind or suite.kind
        if not kind:
            raise SuiteError(f"{path}: task {task.id!r} has no kind and the file sets none")
        try:
            spec = fill_placeholders(
                merge_overrides(suite.spec, task.spec), {"suite_dir": str(path.resolve().parent)}
            )
            state = merge_overrides(file_state, load_state_sources(task.server_state, path.parent))
        except ValueError as exc:
            raise SuiteError(f"{path}: task {task.id!r}: {exc}") from None
        update: dict[str, Any] = {"kind": kind, "spec": spec, "server_state": state}
        if task.team is not None:
            try:
                update["team"] = team_spec_of(task, path)
            except ValueError as exc:
                raise SuiteError(f"{path}: task {task.id!r}: {exc}") from None
        if "split" not in task.model_fields_set and suite.split is not None:
            update["split"] = suite.split
        tasks.append(task.model_copy(update=update))
    return tasks


def team_spec_of(task: TaskSpec, suite_file: Path) -> dict[str, Any]:
    """Return the team spec of ``task`` as a mapping: inline, or read from its YAML file
    (relative to ``suite_file``), checked against the agents its script names.

    Raises:
        ValueError: If the file is missing or not a mapping, the spec declares no agents, or the
            script names an agent the team does not have.
    """
    team = task.team
    if isinstance(team, str):
        file = (suite_file.parent / team).resolve()
        try:
            team = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read team spec {file}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"team spec {file} is not valid YAML: {exc}") from None
    if not isinstance(team, dict) or not isinstance(team.get("agents"), dict) or not team["agents"]:
        raise ValueError("a team spec needs 'agents:', a mapping of agent names to their settings")
    if TEAM_SCRIPT in team["agents"]:
        raise ValueError(f"a team task's agent cannot be named {TEAM_SCRIPT!r} (its script key)")
    unknown = sorted(set(task.agent_scripts()) - set(team["agents"]) - {TEAM_SCRIPT})
    if unknown:
        raise ValueError(f"the script names agents the team does not have: {', '.join(unknown)}")
    return dict(team)


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """Render validation errors one per line, naming the task by its id where possible."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(part) for part in loc) or "file"
        if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
            raw = (data.get("tasks") or [])[loc[1]]
            task_id = raw.get("id") if isinstance(raw, dict) else None
            rest = ".".join(str(part) for part in loc[2:]) or "task"
            where = f"task {task_id or '#' + str(loc[1] + 1)!s}: {rest}"
        lines.append(f"  {where}: {err['msg']} (got {_short(err.get('input'))})")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def merge_overrides(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge nested dicts: ``override`` wins; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def seed_workspace(task: TaskSpec, workspace: Path) -> None:
    """Write the task's seed files and build its SQLite databases under ``workspace``."""
    for name, text in task.files.items():
        target = workspace / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for name, sql in task.databases.items():
        target = workspace / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(target) as connection:
            connection.executescript(sql)
        connection.close()


def scripted_member_models(task: TaskSpec) -> dict[str, ScriptedChatModel]:
    """Return a team task's scripted model per agent (empty for a single-agent task).

    Each member gets its own model, so that members running side by side (a debate's) each
    replay their own turns whatever order they run in.
    """
    return {
        name: scripted_model(turns)
        for name, turns in task.agent_scripts().items()
        if name != TEAM_SCRIPT
    }


def scripted_model(turns: Sequence[ScriptTurn]) -> ScriptedChatModel:
    """Return a ``ScriptedChatModel`` that replays ``turns``.

    Scripts are written for the ``tiny`` profile: a step's result is the answer, so a script
    ends with its last tool call and needs no ``final_answer`` turn.
    """
    messages = [turn.to_message() for turn in turns]
    return ScriptedChatModel(responses=messages, goalgraph_profile="tiny")
