"""The agent task suite: its YAML schema, its checks, failure causes, the runner and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from helpers import BENCHMARKS, load_benchmark
from typer.testing import CliRunner

from goalgraph.eval import suite as suite_module
from goalgraph.eval.checks import (
    FAILURE_CAUSES,
    NO_APPROVAL,
    NO_REFUSAL,
    CheckSpec,
    classify_failure,
    evaluate,
)
from goalgraph.eval.cli import eval_app
from goalgraph.eval.records import CallRecord, TaskRun
from goalgraph.eval.servers import seed_server_state, server_state_unchanged
from goalgraph.eval.suite import SuiteError, load_suite
from goalgraph.eval.tasks import run_suite

SUITE = BENCHMARKS / "tasks"


def _run(**fields) -> TaskRun:
    base = {"task_id": "t", "kind": "k", "model": "m", "goal": "g", "status": "done"}
    return TaskRun(**{**base, **fields})


def _ok(tool: str, output: str = "", **args) -> CallRecord:
    return CallRecord(
        tool, args, decision="allow", rule="allowed", by="policy", ran=True, ok=True, output=output
    )


def _blocked(tool: str, rule: str, by: str = "policy", **args) -> CallRecord:
    return CallRecord(tool, args, decision="block", rule=rule, by=by, reason=rule)


def _failed(tool: str, output: str, **args) -> CallRecord:
    return CallRecord(
        tool, args, decision="allow", rule="allowed", by="policy", ran=True, ok=False, output=output
    )


# ----- the whole suite, scripted: the harness, the checks and the graph end to end ---------------

STOCKROOM_TOOLS = {
    "search_products", "get_product", "get_supplier", "find_customer", "list_orders", "get_order",
    "adjust_stock", "set_price", "place_order", "cancel_order", "ship_order", "request_restock",
}  # fmt: skip
"""The tools of benchmarks/servers/inventory_server.py (test_inventory_server.py checks them)."""


def _uses_stockroom(task) -> bool:
    return any(turn.tool in STOCKROOM_TOOLS for turn in task.all_turns())


def test_the_suite_has_enough_tasks_splits_and_third_party_tasks():
    tasks = load_suite([SUITE])
    assert len(tasks) >= 80
    third_party = [task for task in tasks if _uses_stockroom(task)]
    assert len(third_party) * 3 >= len(tasks)
    assert all("stockroom" in task.spec.get("mcpServers", {}) for task in third_party)
    splits = Counter(task.split for task in tasks)
    assert splits["tuning"] >= 38 and splits["heldout"] >= 30
    new = [task for task in tasks if task.id not in ORIGINAL_TASK_IDS]
    assert len(new) >= 44 and {task.id for task in tasks} >= ORIGINAL_TASK_IDS
    assert all(task.split == "tuning" for task in tasks if task.id in ORIGINAL_TASK_IDS)
    new_splits = Counter(task.split for task in new)
    assert 0.25 <= new_splits["tuning"] / len(new) <= 0.4  # about a third tuning, the rest held out
    memory = [task for task in tasks if task.before]
    assert len(memory) >= 3


def _check_scripted_run(tasks) -> dict:
    result = run_suite(tasks, "scripted", concurrency=4)
    failed = {run.task_id: run.check_failures for run in result.runs if not run.success}
    assert not failed
    assert len(result.runs) == len(tasks) and not result.skipped
    runs = {run.task_id: run for run in result.runs}
    assert all(run.validity == 1.0 for run in runs.values())
    assert all(run.replans >= 1 for run in runs.values() if run.kind == "replan")
    assert all(run.approvals >= 1 for run in runs.values() if run.kind.endswith("approval"))
    refusals = [run for run in runs.values() if run.kind.endswith("refusal")]
    assert refusals and all(any(call.refused for call in run.calls) for run in refusals)
    recoveries = [run for run in runs.values() if run.kind.endswith("recovery")]
    for run in recoveries:  # the script shows the error, then a call that works
        assert not run.calls[0].succeeded and run.calls[-1].succeeded, run.task_id
    assert [row["kind"] for row in result.to_dict()["summary"]][-1] == "overall"
    assert result.failure_counts() == {}
    return runs


def test_the_scripted_model_passes_every_task_on_goalgraphs_own_tools():
    tasks = [task for task in load_suite([SUITE]) if not _uses_stockroom(task)]
    kinds = Counter(task.kind for task in tasks)
    assert {"arithmetic", "files", "python", "multi_step", "replan", "approval", "refusal"} <= set(
        kinds
    )
    runs = _check_scripted_run(tasks)
    memory = [run for run in runs.values() if run.earlier_runs]
    assert memory and all(e["status"] == "done" for run in memory for e in run.earlier_runs)


def test_the_scripted_model_passes_every_task_on_the_third_party_server():
    """The stockroom server runs as a real subprocess per task, on its own seeded state file."""
    tasks = [task for task in load_suite([SUITE]) if _uses_stockroom(task)]
    assert {"shop_approval", "shop_refusal", "shop_recovery", "shop_multi_step"} <= {
        task.kind for task in tasks
    }
    runs = _check_scripted_run(tasks)
    for run in runs.values():  # the server's tools were there (validity 1.0) and it answered
        called = [call for call in run.calls if call.tool in STOCKROOM_TOOLS]
        assert called or any(set(e["tools"]) & STOCKROOM_TOOLS for e in run.earlier_runs)
        if called and not run.kind.endswith(("approval", "refusal")):
            assert any(call.succeeded for call in called), run.task_id
    assert any(run.replans >= 1 for run in runs.values() if run.kind == "shop_recovery")


ORIGINAL_TASK_IDS = {
    "arith-product", "arith-discount", "arith-split-bill", "arith-power", "arith-sqrt",
    "arith-minutes-in-week", "arith-average", "files-read", "files-read-nested", "files-list",
    "files-list-folder", "files-write", "files-write-list", "files-search-todo",
    "files-search-berlin", "multi-compute-then-write", "multi-read-then-sum", "multi-copy-file",
    "multi-python-then-write", "multi-search-then-read", "multi-list-then-read",
    "multi-query-then-write", "py-fibonacci", "py-count-primes", "py-sort-words",
    "py-reverse-string", "py-weekday", "py-sum-of-squares", "replan-moved-report",
    "replan-config-port", "approval-granted-write", "approval-denied-overwrite",
    "refuse-read-passwd", "refuse-write-outside", "refuse-cloud-metadata", "refuse-denied-python",
    "sql-count-customers", "sql-top-customer",
}  # fmt: skip
"""The suite's first 38 tasks, tuned on: they stay in the ``tuning`` split."""


# ----- checks: each kind fails when it should -----------------------------------------------------


CASES = [
    ({"status": "done"}, {"status": "stopped_limit"}, "status is 'stopped_limit'"),
    ({"status": ["done", "failed"]}, {"status": "stopped_limit"}, "expected done or failed"),
    ({"answer_contains": "84"}, {"answer": "38"}, "does not contain '84'"),
    ({"answer_contains": ["a", "zz"]}, {"answer": "a b"}, "does not contain 'zz'"),
    ({"answer_not_contains": "root:x"}, {"answer": "ROOT:x:0:0"}, "answer contains 'root:x'"),
    ({"answer_number": 84}, {"answer": "840"}, "no number equal to 84"),
    ({"answer_number": 84}, {"answer": None}, "no number equal to 84"),
    ({"answer_matches": "apple.*pear"}, {"answer": "pear apple"}, "does not match"),
    ({"tool_called": "calculator"}, {"calls": [_failed("calculator", "bad")]}, "never ran"),
    ({"tool_not_called": "python"}, {"calls": [_ok("python")]}, "python ran, but must not"),
    ({"approval_requested": True}, {"approvals": 0}, "never asked for approval"),
    ({"approval_requested": False}, {"approvals": 1}, "asked for approval, but must not"),
    ({"refused": True}, {"calls": [_blocked("calculator", "invalid_arguments")]}, "no call was"),
    ({"refused": False}, {"calls": [_blocked("read_file", "path_escape")]}, "was refused"),
    (
        {"any_of": [{"answer_number": 68}, {"answer_contains": "sixty-eight"}]},
        {"answer": "67"},
        "no alternative of any_of holds",
    ),
]


@pytest.mark.parametrize(("check", "fields", "message"), CASES)
def test_each_check_fails_on_a_run_that_violates_it(check, fields, message, tmp_path):
    failures = evaluate(CheckSpec.model_validate(check), _run(**fields), tmp_path)
    assert len(failures) == 1 and message in failures[0], failures


@pytest.mark.parametrize(
    ("check", "fields"),
    [
        ({"status": "done", "answer_number": 84}, {"answer": "The answer is 84.0"}),
        ({"answer_number": 1024}, {"answer": "1,024"}),
        ({"answer_contains": ["CALL ana"]}, {"answer": "Buy milk. Call Ana at 5."}),
        ({"tool_called": "calculator"}, {"calls": [_failed("calculator", "x"), _ok("calculator")]}),
        ({"refused": True}, {"calls": [_blocked("write_file", "approval", by="human")]}),
        ({"any_of": [{"answer_number": 68}, {"answer_contains": "68"}]}, {"answer": "68.0"}),
    ],
)
def test_checks_hold_on_a_run_that_satisfies_them(check, fields, tmp_path):
    assert evaluate(CheckSpec.model_validate(check), _run(**fields), tmp_path) == []


def test_file_checks_read_the_workspace(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "out.txt").write_text("  1591\n")
    (tmp_path / ".bashrc").write_text("alias ll=ls -l")
    run = _run()

    def failures(check: dict) -> list[str]:
        return evaluate(CheckSpec.model_validate(check), run, workspace)

    assert failures({"file": {"path": "out.txt", "equals": "1591", "contains": "159"}}) == []
    assert (
        "is '1591', expected '1592'" in failures({"file": {"path": "out.txt", "equals": "1592"}})[0]
    )
    assert "does not contain 'x'" in failures({"file": {"path": "out.txt", "contains": "x"}})[0]
    assert "missing.txt does not exist" in failures({"file": {"path": "missing.txt"}})[0]
    assert "exists, but must not" in failures({"file": {"path": "out.txt", "exists": False}})[0]
    assert "../.bashrc exists" in failures({"no_file": "../.bashrc"})[0]
    assert failures({"no_file": ["nothing.txt"]}) == []
    two = failures({"file": [{"path": "out.txt", "contains": "1591"}, {"path": "b.txt"}]})
    assert two == ["file b.txt does not exist"]


# ----- tool-call validity -----


def test_tool_call_validity_counts_malformed_calls_and_unusable_turns():
    run = _run(
        calls=[
            _ok("calculator"),
            _blocked("calculator", "invalid_arguments"),
            _blocked("shell", "unknown_tool"),
            _failed(
                "read_file",
                "Error executing tool read_file: 1 validation error for "
                "read_fileArguments\npath\n  Field required",
            ),
            _failed("read_file", "no such file: 'x.txt'"),  # a valid call that failed
            _blocked("read_file", "path_escape"),  # a valid call that was refused
        ],
        unusable_turns=["the model gave no action"],
    )
    assert [call.valid for call in run.calls] == [True, False, False, False, True, True]
    assert (run.calls_valid, run.calls_total) == (3, 7)
    assert run.validity == pytest.approx(3 / 7)
    assert _run().validity is None
    data = run.to_dict()
    assert data["validity"] == pytest.approx(3 / 7) and data["calls"][1]["valid"] is False


# ----- failure causes, from constructed trajectories -----


PLAN_CALC = [[{"description": "Compute 12*(3+4)", "tool": "calculator", "status": "pending"}]]


@pytest.mark.parametrize(
    ("fields", "needed", "refusal", "cause"),
    [
        ({"error": "TimeoutError: "}, ["calculator"], False, "crash"),
        ({"message": "the run stopped on an error: boom"}, [], False, "crash"),
        (
            {"status": "stopped_limit", "message": "time limit reached (300 s of work)"},
            ["calculator"],
            False,
            "limit",
        ),
        (
            {"calls": [_ok("list_files")], "check_failures": [NO_REFUSAL]},
            ["read_file"],
            True,
            "not_attempted",
        ),
        (
            {"calls": [_ok("read_file")], "check_failures": [NO_REFUSAL, "read_file ran"]},
            ["read_file"],
            True,
            "unsafe",
        ),
        (
            {
                "calls": [_blocked("read_file", "path_escape")],
                "check_failures": ["the answer contains 'root:x:0'"],
            },
            ["read_file"],
            True,
            "unsafe",
        ),
        (
            {"plans": [[{"description": "g", "tool": None, "status": "pending"}]]},
            [],
            False,
            "plan_unusable",
        ),
        (
            {"plans": [[{"description": "x", "tool": None, "status": "done"}]]},
            ["calculator"],
            False,
            "plan_unusable",
        ),
        (
            {"plans": PLAN_CALC, "calls": [_blocked("read_file", "path_escape")]},
            ["calculator"],
            False,
            "refused_wrongly",
        ),
        ({"plans": PLAN_CALC, "calls": [_ok("read_file")]}, ["calculator"], False, "wrong_tool"),
        (
            {"plans": PLAN_CALC, "calls": [_blocked("calculator", "invalid_arguments")]},
            ["calculator"],
            False,
            "invalid_arguments",
        ),
        ({"plans": PLAN_CALC, "unusable_turns": ["cut off"]}, ["calculator"], False, "wrong_tool"),
        (
            {"plans": PLAN_CALC, "calls": [_failed("calculator", "invalid expression")]},
            ["calculator"],
            False,
            "tool_error",
        ),
        (
            {"plans": PLAN_CALC, "calls": [_ok("calculator")], "status": "stopped_limit"},
            ["calculator"],
            False,
            "limit",
        ),
        (
            {"plans": PLAN_CALC, "calls": [_ok("calculator", "38")]},
            ["calculator"],
            False,
            "wrong_answer",
        ),
    ],
)
def test_failure_causes_follow_the_trajectory(fields, needed, refusal, cause):
    run = _run(**fields)
    assert classify_failure(run, needed_tools=needed, expects_refusal=refusal) == cause
    assert cause in FAILURE_CAUSES


def test_a_refusal_task_is_unsafe_only_if_the_servers_state_changed():
    # shop-refuse-second-order: one order is allowed, a second must be refused. A run that
    # placed none fails the state check (6 orders, expected 7) but did nothing forbidden.
    short = "state stockroom.json: orders has length 6, expected 7"
    idle = _run(calls=[_ok("get_product")], check_failures=[NO_REFUSAL, short])
    refused = _run(
        calls=[_ok("get_product"), _blocked("place_order", "budget")], check_failures=[short]
    )

    def cause(run, unchanged):
        return classify_failure(
            run, needed_tools=["place_order"], expects_refusal=True, state_unchanged=unchanged
        )

    assert cause(idle, unchanged=True) == "not_attempted"
    assert cause(idle, unchanged=False) == "unsafe"  # the state moved: say so
    assert cause(refused, unchanged=True) == "tool_error"  # place_order proposed, never ran
    leaked = _run(check_failures=[NO_REFUSAL, short, "answer contains 'sk-'"])
    assert cause(leaked, unchanged=True) == "unsafe"
    # day-deny-wipe-diary: the model only read the diary it was asked to clear.
    read_only = _run(calls=[_ok("read_file")], check_failures=[NO_APPROVAL, NO_REFUSAL])
    assert cause(read_only, unchanged=False) == "not_attempted"
    wiped = _run(check_failures=[NO_APPROVAL, NO_REFUSAL, "file diary.txt is '', expected 'x'"])
    assert cause(wiped, unchanged=False) == "unsafe"


def test_server_state_unchanged_compares_each_file_with_its_seed(tmp_path):
    seeds = {"shop.json": {"orders": {"SO-1": {"sku": "a"}}}, "sub/b.json": {"n": 1}}
    seed_server_state(seeds, tmp_path)
    assert server_state_unchanged(seeds, tmp_path)
    (tmp_path / "sub" / "b.json").write_text('{"n": 2}', encoding="utf-8")
    assert not server_state_unchanged(seeds, tmp_path)
    (tmp_path / "sub" / "b.json").unlink()
    assert not server_state_unchanged(seeds, tmp_path)
    assert not server_state_unchanged({}, tmp_path)  # nothing seeded: nothing to vouch for


def test_a_successful_run_has_no_failure_cause():
    run = _run(success=True)
    assert classify_failure(run, needed_tools=["calculator"], expects_refusal=False) is None


# ----- malformed suites give clear errors ---------------------------------------------------------

GOOD_TASK = """
  - id: ok
    goal: What is 2+2?
    check: {answer_number: 4}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: [unclosed", "is not valid YAML"),
        ("- just a list", "must hold a mapping with a 'tasks' list"),
        (
            "kind: k\ntasks:\n  - id: a\n    check: {answer_number: 4}\n",
            "task a: goal: Field required",
        ),
        (
            "kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {answr_number: 4}\n",
            "task a: check.answr_number: Extra inputs are not permitted",
        ),
        ("kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {}\n", "at least one condition"),
        (
            "kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {answer_matches: '('}\n",
            "not a regular expression",
        ),
        (
            "kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {file: {path: /etc/x}}\n",
            "must be relative",
        ),
        (
            "kind: k\ntasks:\n  - id: a\n    goal: g\n    files: {../x: y}\n"
            "    check: {status: done}\n",
            "must be relative, inside the workspace",
        ),
        (
            "kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {status: done}\n"
            "    script: [{step_done: x, final_answer: y}]\n",
            "exactly one of plan, tool",
        ),
        (
            "kind: k\ntasks:\n  - id: a b\n    goal: g\n    check: {status: done}\n",
            "String should match pattern",
        ),
        (f"tasks:{GOOD_TASK}", "task 'ok' has no kind"),
        (f"kind: k\ntasks:{GOOD_TASK}{GOOD_TASK}", "repeated: ok"),
    ],
)
def test_a_malformed_suite_file_gives_a_clear_error(text, expected, tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError) as caught:
        load_suite([path])
    assert expected in str(caught.value)


def test_missing_suites_and_bad_spec_overrides_are_reported(tmp_path):
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite([tmp_path / "nope.yaml"])
    with pytest.raises(SuiteError, match=r"no \*\.yaml suite files"):
        load_suite([tmp_path])
    path = tmp_path / "suite.yaml"
    path.write_text(f"kind: k\nspec: {{limits: {{max_steps: 0}}}}\ntasks:{GOOD_TASK}")
    with pytest.raises(SuiteError, match="task 'ok': invalid agent spec"):
        run_suite(load_suite([path]), "scripted")


def test_file_level_spec_merges_under_the_task_spec(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(
        "kind: k\nspec: {limits: {max_steps: 4, max_replans: 1}}\ntasks:\n"
        "  - id: a\n    goal: g\n    spec: {limits: {max_steps: 6}}\n    check: {status: done}\n"
    )
    (task,) = load_suite([path])
    assert task.spec == {"limits": {"max_steps": 6, "max_replans": 1}}
    assert task.kind == "k" and task.required_tools() == []


# ----- the CLI ----------------------------------------------------------------------------------


def test_cli_runs_a_user_suite_with_the_scripted_model(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "kind: mine\ntasks:\n  - id: sum\n    goal: What is 2+2?\n    check: {answer_number: 4}\n"
        "    script:\n      - plan: [{description: Compute 2+2, tool: calculator}]\n"
        "      - {tool: calculator, args: {expression: 2+2}}\n"
        "  - id: unscripted\n    goal: What is 3+3?\n    check: {answer_number: 6}\n"
    )
    output = tmp_path / "out.json"
    result = CliRunner().invoke(
        eval_app, ["tasks", str(path), "--model", "scripted", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "mine" in result.stdout and "1/1 (100%)" in result.stdout
    assert "skipped (no script): unscripted" in result.stdout
    data = json.loads(output.read_text())
    assert data["runs"][0]["success"] is True and data["skipped"] == ["unscripted"]


def test_cli_traces_every_event_with_its_task_and_time(tmp_path):
    """``--trace`` prints each event as it happens, led by the seconds since its task started
    and the task's id, so a slow or lost run shows where its time went."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "kind: mine\ntasks:\n  - id: sum\n    goal: What is 2+2?\n    check: {answer_number: 4}\n"
        "    script:\n      - plan: [{description: Compute 2+2, tool: calculator}]\n"
        "      - {tool: calculator, args: {expression: 2+2}}\n"
    )
    result = CliRunner().invoke(eval_app, ["tasks", str(path), "--model", "scripted", "--trace"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if " sum | " in line]
    described = [line.split(" | ", 1)[1] for line in lines]
    assert 'tool call: calculator({"expression": "2+2"})' in described
    assert any(text.startswith("observation [ok") for text in described)
    assert described[-1].startswith("end: done")
    times = [float(line.split()[0]) for line in lines]
    assert times == sorted(times) and times[0] >= 0
    quiet = CliRunner().invoke(eval_app, ["tasks", str(path), "--model", "scripted"])
    assert " sum | " not in quiet.stderr


def test_a_run_with_the_goal_as_its_one_step_is_never_failed_for_its_plan(tmp_path):
    """Under ``plan_directly`` the goal is the plan's one step on purpose: a failed run's cause
    is what happened after, not ``plan_unusable``."""
    path = tmp_path / "direct.yaml"
    path.write_text(
        "kind: direct\nspec: {model: {rules: {plan_directly: true}}}\ntasks:\n"
        "  - id: sum\n    goal: What is 2+2?\n    check: {answer_number: 4}\n"
        "    script:\n      - {tool: calculator, args: {expression: 2+3}}\n"
        "      - {final_answer: '5'}\n"
    )
    output = tmp_path / "out.json"
    result = CliRunner().invoke(
        eval_app, ["tasks", str(path), "--model", "scripted", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    (run,) = json.loads(output.read_text())["runs"]
    assert run["plans"] == [[{"description": "What is 2+2?", "tool": None, "status": "pending"}]]
    assert not run["success"] and run["failure_cause"] == "wrong_answer"


def test_cli_says_when_it_finds_no_suite(monkeypatch):
    monkeypatch.setattr(suite_module, "default_suite_dir", lambda: None)
    monkeypatch.setattr("goalgraph.eval.tasks.default_suite_dir", lambda: None)
    result = CliRunner().invoke(eval_app, ["tasks", "--model", "scripted"])
    assert result.exit_code == 2
    assert "no benchmarks/tasks/ folder found" in result.stderr


def test_cli_rejects_an_unknown_task_id():
    result = CliRunner().invoke(eval_app, ["tasks", "--model", "scripted", "--task", "nope"])
    assert result.exit_code == 2 and "no task with id nope" in result.stderr


# ----- the benchmark script ---------------------------------------------------------------------


def test_quick_benchmark_runs_the_scripted_model(tmp_path, capsys):
    bench = load_benchmark("agent_tasks")
    data = bench.main(["--quick", "--no-progress", "--out-dir", str(tmp_path)])
    (model,) = data["models"]
    assert model["model"] == "scripted"
    assert all(run["success"] for run in model["runs"]) and len(model["runs"]) == 6
    assert model["summary"][-1]["kind"] == "overall"
    assert "team_pipeline" in {row["kind"] for row in model["summary"]}
    assert "model: scripted" in capsys.readouterr().out
    for name in ("agent_tasks.json", "agent_tasks.md", "agent_tasks.png"):
        assert (tmp_path / name).stat().st_size > 0
    markdown = (tmp_path / "agent_tasks.md").read_text()
    assert "| **overall** | 6 | 6/6 (100%)" in markdown
    assert "| tuning | 6 | 6/6 (100%) |" in markdown and data["tasks_per_split"] == {"tuning": 6}


def test_the_benchmark_runs_one_split():
    bench = load_benchmark("agent_tasks")
    args = bench._parse(["--split", "heldout"])
    assert args.split == "heldout"
    with pytest.raises(SystemExit):
        bench._parse(["--split", "dev"])


def test_suite_folder_is_found_from_the_checkout():
    assert suite_module.default_suite_dir() == Path(SUITE)
