"""One path normaliser for the safety policy and the workspace tools, and loop detection on it.

Before, the policy let through paths padded with whitespace that the tools then refused, blocked
the harmless file name ``a\\..\\b.txt``, and counted ``./notes.txt`` after ``notes.txt`` as a new
call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import StructuredTool

from goalgraph import Agent, AgentSpec
from goalgraph.progress import failure_key
from goalgraph.risk import PATHS_META_KEY, RISK_META_KEY, ToolTraits
from goalgraph.safety import RunLedger, call_signature, check_action, output_source
from goalgraph.spec import SafetySpec
from goalgraph.testing import ScriptedChatModel, final_answer, plan, tool_call
from goalgraph.tools.workspace import Workspace, WorkspaceError
from goalgraph.tools.workspace_paths import PathRefused, normalise_path

SCHEMAS = {"read_file": {"type": "object", "properties": {"path": {"type": "string"}}}}
TRAITS = {"read_file": ToolTraits("read", path_args=("path",))}


def policy_blocks(path: str, ledger: RunLedger | None = None, limit: int = 5) -> str | None:
    """The rule that blocks ``read_file(path)``, or ``None`` when the policy allows it."""
    verdict = check_action(
        {"kind": "tool", "thought": "", "tool": "read_file", "args": {"path": path}},  # type: ignore[typeddict-item]
        policy=SafetySpec(),
        schemas=SCHEMAS,
        ledger=ledger or RunLedger(),
        max_identical_calls=limit,
        traits=TRAITS,
    )
    return None if verdict.decision == "allow" else verdict.rule


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("notes.txt", "notes.txt"),
        ("  notes.txt\n", "notes.txt"),
        ("\t./notes//todo.txt ", "notes/todo.txt"),
        ("a/../b.txt", "b.txt"),
        ("a\\..\\b.txt", "a\\..\\b.txt"),  # one file name on POSIX
        ("..\\x", "..\\x"),
        ("", "."),
        (" . ", "."),
        ("notes/", "notes"),
        ("~notes", "~notes"),
    ],
)
def test_normalised_paths(given: str, normalised: str) -> None:
    assert str(normalise_path(given)) == normalised


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("../x", "leads outside the workspace"),
        (" ../secret.txt", "leads outside the workspace"),
        ("notes/../../x", "leads outside the workspace"),
        ("/etc/passwd", "absolute path"),
        ("\t/etc/passwd\n", "absolute path"),
        ("\\\\server\\share", "absolute path"),
        ("C:\\Windows\\win.ini", "absolute path"),
        ("~/.ssh/id_rsa", "home folder"),
        (" ~", "home folder"),
        ("a\x00b", "NUL"),
    ],
)
def test_refused_paths(given: str, reason: str) -> None:
    with pytest.raises(PathRefused, match=reason):
        normalise_path(given)


def test_absolute_paths_inside_a_root_become_relative(tmp_path: Path) -> None:
    assert str(normalise_path(f" {tmp_path}/a/../b.txt", roots=[tmp_path])) == "b.txt"
    assert str(normalise_path(str(tmp_path), roots=[tmp_path])) == "."
    with pytest.raises(PathRefused, match="outside the workspace"):
        normalise_path(f"{tmp_path}2/x", roots=[tmp_path])


@pytest.mark.parametrize(
    "path",
    [
        " notes.txt",
        "notes.txt\n",
        "\t./notes.txt",
        "a\\..\\b.txt",
        " ../secret.txt",
        "\t/etc/passwd\n",
        "notes/../../secret.txt",
        "~/secret.txt",
        "box/../notes.txt",
    ],
)
def test_the_policy_and_the_tools_agree(tmp_path: Path, path: str) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.write_text("notes.txt", "my notes")
    ws.write_text("a\\..\\b.txt", "a file with backslashes in its name")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    try:
        ws.read_text(path)
        tool_refuses = False
    except WorkspaceError as exc:
        refusals = ("outside the workspace", "absolute path", "home folder")
        tool_refuses = any(refusal in str(exc) for refusal in refusals)
    rule = policy_blocks(path)
    assert rule in (None, "path_escape")
    assert (rule == "path_escape") == tool_refuses


def test_a_backslash_name_is_allowed_and_climbing_is_blocked() -> None:
    assert policy_blocks("a\\..\\b.txt") is None
    assert policy_blocks("../x") == "path_escape"
    assert policy_blocks("  ../x") == "path_escape"
    assert policy_blocks(" /etc/passwd") == "path_escape"


def test_loop_detection_compares_normalised_paths() -> None:
    first = call_signature("read_file", {"path": "notes.txt"}, TRAITS)
    for same in ("./notes.txt", " notes.txt\n", "docs/../notes.txt", "notes.txt/"):
        assert call_signature("read_file", {"path": same}, TRAITS) == first
    assert call_signature("read_file", {"path": "Notes.txt"}, TRAITS) != first
    ledger = RunLedger(call_counts={first: 1}, tool_counts={"read_file": 1})
    assert policy_blocks("./notes.txt", ledger, limit=1) == "loop"
    assert policy_blocks("other.txt", ledger, limit=1) is None
    # Without path traits an argument is only a string: nothing is normalised.
    assert call_signature("read_file", {"path": "./notes.txt"}) != call_signature(
        "read_file", {"path": "notes.txt"}
    )


def test_failure_keys_compare_normalised_paths() -> None:
    error = "no such file: 'notes.txt'"
    key = failure_key("read_file", {"path": "notes.txt"}, error, ("path",))
    assert failure_key("read_file", {"path": "./notes.txt"}, error, ("path",)) == key
    assert failure_key("read_file", {"path": "./notes.txt"}, error) != key


def _read_note() -> StructuredTool:
    """A read tool whose ``path`` argument is declared a workspace path, as goalgraph's
    server declares it."""

    def read(path: str) -> str:
        return f"the text of {path}"

    return StructuredTool.from_function(
        read,
        name="read_note",
        description="Read a note.",
        metadata={"_meta": {RISK_META_KEY: "read", PATHS_META_KEY: ["path"]}},
    )


def test_the_agent_blocks_a_repeated_call_spelled_differently() -> None:
    model = ScriptedChatModel(
        responses=[
            plan(("read the note", "other_tool")),
            tool_call("read_note", path="notes.txt"),
            tool_call("read_note", path="./notes.txt"),
            final_answer("done"),
        ],
        goalgraph_profile="tiny",
    )
    agent = Agent(
        AgentSpec(
            builtin_tools=False,
            final_answer="model",
            limits={"max_identical_calls": 1, "max_step_attempts": 5},
        ),
        model=model,
        tools=[_read_note()],
    )
    try:
        result = agent.run("read the note twice")
    finally:
        agent.close()
    counters = result.counters
    assert counters is not None
    assert counters["tool_calls"] == 1
    assert counters["blocked"] == 1
    blocked: Any = [m for m in model.calls[3] if "loop detected" in str(m.content)]
    assert blocked


@pytest.mark.parametrize(
    "path",
    [
        "notes/../.goalgraph/artifacts/2cf2.txt",
        " .goalgraph/artifacts/2cf2.txt",
        ".goalgraph/artifacts/2cf2.txt\n",
        "./.goalgraph/./artifacts/2cf2.txt",
    ],
)
def test_saved_outputs_are_external_however_the_path_is_spelled(path: str) -> None:
    # The workspace reads all of these as a file goalgraph saved from a tool's output; the
    # taint check has to see them as such too.
    reader = ToolTraits("read", path_args=("path",), source="workspace")
    assert str(normalise_path(path)) == ".goalgraph/artifacts/2cf2.txt"
    assert output_source(reader, {"path": path}, saved_outputs=".goalgraph/artifacts") == (
        "external"
    )


def test_a_backslash_name_is_not_the_saved_outputs_folder() -> None:
    reader = ToolTraits("read", path_args=("path",), source="workspace")
    # One file name on POSIX, beside the folder rather than in it.
    path = ".goalgraph\\artifacts\\2cf2.txt"
    assert output_source(reader, {"path": path}, saved_outputs=".goalgraph/artifacts") == (
        "workspace"
    )
