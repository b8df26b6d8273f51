"""Task-suite support for third-party MCP servers, their state, memory across runs and splits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import BENCHMARKS
from typer.testing import CliRunner

from goalgraph.eval.checks import CheckSpec, evaluate
from goalgraph.eval.cli import eval_app
from goalgraph.eval.records import TaskRun
from goalgraph.eval.servers import fill_placeholders, seed_server_state
from goalgraph.eval.suite import SuiteError, load_suite, scripted_model
from goalgraph.eval.tasks import arun_task, run_suite, select_tasks, summary_table, task_spec

SERVER = BENCHMARKS / "servers" / "inventory_server.py"

STOCKROOM = """
spec:
  mcpServers:
    shop:
      command: "{python}"
      args: ["{suite_dir}/inventory_server.py", --state, "{task_dir}/shop.json"]
      env: {SHOP_WORKSPACE: "{workspace}"}
server_state:
  shop.json:
    products:
      widget: {name: Widget, quantity: 7, price: 2.5, supplier: acme}
      gadget: {name: Gadget, quantity: 3, price: 9.0, supplier: acme}
    suppliers:
      acme: {name: Acme Parts, email: sales@acme.example, lead_time_days: 2}
"""


def _suite(tmp_path: Path, body: str, name: str = "suite.yaml") -> Path:
    """Write a suite file next to a copy of the stockroom server (for ``{suite_dir}``)."""
    (tmp_path / "inventory_server.py").write_text(SERVER.read_text())
    path = tmp_path / name
    path.write_text(body)
    return path


def _run(**fields) -> TaskRun:
    return TaskRun(**{"task_id": "t", "kind": "k", "model": "m", "status": "done", **fields})


# ----- placeholders ------------------------------------------------------------------------------


def test_placeholders_are_filled_at_load_time_and_at_run_time(tmp_path):
    path = _suite(
        tmp_path,
        STOCKROOM + "kind: shop\ntasks:\n  - id: a\n    goal: g\n    check: {status: done}\n",
    )
    (task,) = load_suite([path])
    server = task.spec["mcpServers"]["shop"]
    assert server["args"][0] == f"{tmp_path.resolve()}/inventory_server.py"  # at load time
    assert server["args"][2] == "{task_dir}/shop.json"  # left for the run
    root = tmp_path / "run"
    shop = task_spec(task, root).mcp_servers["shop"]
    assert shop.command == sys.executable
    assert shop.args[2] == f"{root}/shop.json"
    assert shop.env == {"SHOP_WORKSPACE": str(root / "workspace")}
    assert task.spec["mcpServers"]["shop"]["command"] == "{python}"  # the task is not changed


def test_placeholders_touch_only_server_settings_and_unknown_ones_are_errors(tmp_path):
    spec = {"mcpServers": {"s": {"command": "x", "args": ["{task_dir}"]}}, "goal": "{task_dir}"}
    filled = fill_placeholders(spec, {"task_dir": "/t"})
    assert filled["mcpServers"]["s"]["args"] == ["/t"] and filled["goal"] == "{task_dir}"
    path = _suite(
        tmp_path,
        "kind: k\nspec: {mcpServers: {s: {command: x, args: ['{task_folder}/a.json']}}}\n"
        "tasks:\n  - id: a\n    goal: g\n    check: {status: done}\n",
    )
    with pytest.raises(SuiteError) as caught:
        load_suite([path])
    assert "task 'a': unknown placeholder {task_folder} in mcpServers" in str(caught.value)
    assert "known: {task_dir}, {workspace}, {python}, {suite_dir}" in str(caught.value)


# ----- seeded server state -----------------------------------------------------------------------


def test_server_state_comes_from_a_file_and_a_task_merges_over_it(tmp_path):
    (tmp_path / "seed.json").write_text(json.dumps({"products": {"a": {"quantity": 1}}}))
    path = _suite(
        tmp_path,
        "kind: k\nserver_state: {shop.json: seed.json}\ntasks:\n"
        "  - id: a\n    goal: g\n    check: {status: done}\n"
        "  - id: b\n    goal: g\n    check: {status: done}\n"
        "    server_state: {shop.json: {products: {a: {price: 2}, b: {quantity: 5}}}}\n",
    )
    first, second = load_suite([path])
    assert first.server_state == {"shop.json": {"products": {"a": {"quantity": 1}}}}
    merged = {"a": {"quantity": 1, "price": 2}, "b": {"quantity": 5}}
    assert second.server_state == {"shop.json": {"products": merged}}
    seed_server_state(second.server_state, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "shop.json").read_text())["products"] == merged


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("{shop.json: missing.json}", "cannot read"),
        ("{shop.json: notes.txt}", "is not a .json, .yaml or .yml file"),
        ("{checkpoints.sqlite: {a: 1}}", "would overwrite the runner's own"),
        ("{../shop.json: {a: 1}}", "must be a relative path inside the task folder"),
    ],
)
def test_bad_server_state_is_a_clear_error(state, message, tmp_path):
    path = _suite(tmp_path, f"kind: k\nserver_state: {state}\ntasks:\n  - id: a\n    goal: g\n"
                  "    check: {status: done}\n")  # fmt: skip
    with pytest.raises(SuiteError, match="server_state") as caught:
        load_suite([path])
    assert message in str(caught.value)


# ----- the state check ---------------------------------------------------------------------------

STATE = {
    "products": {"widget": {"quantity": 7, "name": "Blue widget"}},
    "orders": {"SO-1": {"lines": [{"sku": "widget", "quantity": 2}], "status": "open"}},
    "tags": ["new", "sale"],
}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"path": "products.widget.quantity", "equals": 7}, None),
        ({"path": "products.widget.quantity", "equals": 7.0}, None),
        ({"path": "products.widget.quantity", "equals": 8}, "is 7, expected 8"),
        ({"path": "orders.SO-1.lines.0.sku", "equals": "widget"}, None),
        ({"path": "orders.SO-1.lines.3.sku", "equals": "widget"}, "lines is a list of 1"),
        ({"path": "products.gizmo.quantity", "equals": 1}, "products has widget"),
        ({"path": "products.widget.name", "contains": "BLUE"}, None),
        ({"path": "tags", "contains": "sale"}, None),
        ({"path": "tags", "contains": "old"}, 'does not contain "old"'),
        ({"path": "orders", "contains": "SO-1"}, None),
        ({"path": "orders", "length": 1}, None),
        ({"path": "tags", "length": 3}, "has length 2, expected 3"),
        ({"path": "orders.SO-2", "exists": False}, None),
        ({"path": "orders.SO-1", "exists": False}, "exists, but must not"),
        ({"path": "", "length": 3}, None),
    ],
)
def test_the_state_check_reads_the_task_folder(condition, message, tmp_path):
    (tmp_path / "shop.json").write_text(json.dumps(STATE))
    check = CheckSpec.model_validate({"state": {"file": "shop.json", **condition}})
    failures = evaluate(check, _run(), tmp_path / "workspace")  # the folder of the workspace
    if message is None:
        assert failures == []
    else:
        assert len(failures) == 1 and message in failures[0], failures


def test_the_state_check_reports_a_missing_or_broken_file(tmp_path):
    check = CheckSpec.model_validate({"state": {"file": "shop.json", "path": "a", "equals": 1}})
    assert evaluate(check, _run(), tmp_path / "ws") == ["state file shop.json does not exist"]
    (tmp_path / "shop.json").write_text("{broken")
    assert "is not readable JSON" in evaluate(check, _run(), tmp_path / "ws")[0]
    with pytest.raises(ValueError, match="must not exist cannot have"):
        CheckSpec.model_validate({"state": {"file": "s.json", "exists": False, "equals": 1}})


def test_a_tasks_own_server_runs_and_its_state_decides_the_check(tmp_path):
    script = (
        "    script:\n      - plan: [{description: Add 5 widgets, tool: adjust_stock}]\n"
        "      - {tool: adjust_stock, args: {sku: widget, change: 5}}\n"
    )
    path = _suite(
        tmp_path,
        STOCKROOM + "kind: shop\ntasks:\n"
        "  - id: right\n    goal: Add 5 widgets\n"
        "    check: {state: {file: shop.json, path: products.widget.quantity, equals: 12}}\n"
        + script
        + "  - id: wrong\n    goal: Add 5 widgets\n"
        "    check: {state: {file: shop.json, path: products.widget.quantity, equals: 7}}\n"
        + script,
    )
    result = run_suite(load_suite([path]), "scripted", concurrency=2)
    right, wrong = result.runs
    assert right.success and right.calls[0].output == "widget: 7 -> 12 units"
    assert not wrong.success
    assert wrong.check_failures == ["state shop.json:products.widget.quantity is 12, expected 7"]


# ----- memory across runs ------------------------------------------------------------------------

MEMORY_SUITE = """
kind: memory
tasks:
  - id: told
    goal: What is the gate code?
    before:
      - goal: "Remember: the gate code is 5820."
        script:
          - plan: [{description: Acknowledge the note, tool: none}]
          - {step_done: Noted.}
    check: {status: done, answer_contains: "5820"}
    script: &recall
      - plan: [{description: Search memory for the gate code, tool: memory_search}]
      - {tool: memory_search, args: {query: gate code}}
  - id: never-told
    goal: What is the gate code?
    before:
      - goal: "Remember: the bins go out on Thursday."
        script:
          - plan: [{description: Acknowledge the note, tool: none}]
          - {step_done: Noted.}
    check: {status: done, answer_contains: "5820"}
    script: *recall
"""


async def test_a_later_run_answers_from_what_an_earlier_run_was_told(tmp_path):
    told, never_told = load_suite([_suite(tmp_path, MEMORY_SUITE)])
    assert told.spec == {} and task_spec(told, tmp_path).memory.backend == "graph"
    folder = tmp_path / "told"
    folder.mkdir()
    model = scripted_model(told.all_turns())  # the earlier run's script, then the task's
    run = await arun_task(told, model, "scripted", keep_in=folder)
    assert run.success, run.check_failures
    assert run.earlier_runs == [
        {
            "goal": "Remember: the gate code is 5820.",
            "status": "done",
            "answer": "Noted.",
            "tools": [],
            "approvals": 0,
            "error": None,
        }
    ]
    assert [call.tool for call in run.calls] == ["memory_search"]  # only its own goal's calls
    assert (folder / "memory.sqlite").is_file() and not model.responses
    # Told something else before, the same final run finds nothing: the answer came from memory.
    other = await arun_task(never_told, scripted_model(never_told.all_turns()), "scripted")
    assert not other.success and "does not contain '5820'" in other.check_failures[0]


def test_a_task_without_earlier_runs_keeps_memory_off(tmp_path):
    path = _suite(tmp_path, "kind: k\ntasks:\n  - id: a\n    goal: g\n    check: {status: done}\n")
    (task,) = load_suite([path])
    assert task_spec(task, tmp_path).memory.backend == "none" and task.all_turns() == []


# ----- splits ------------------------------------------------------------------------------------

SPLIT_SUITE = """
kind: k
split: heldout
tasks:
  - id: a
    goal: What is 2+2?
    check: {answer_number: 4}
    script:
      - plan: [{description: Compute 2+2, tool: calculator}]
      - {tool: calculator, args: {expression: 2+2}}
  - id: b
    split: tuning
    goal: What is 3+3?
    check: {answer_number: 7}
    script:
      - plan: [{description: Compute 3+3, tool: calculator}]
      - {tool: calculator, args: {expression: 3+3}}
"""


def test_splits_default_per_file_and_filter_the_suite(tmp_path):
    tasks = load_suite([_suite(tmp_path, SPLIT_SUITE)])
    assert [task.split for task in tasks] == ["heldout", "tuning"]
    assert [t.id for t in select_tasks(tasks, split="heldout")] == ["a"]
    assert [t.id for t in select_tasks(tasks, split="tuning")] == ["b"]
    assert len(select_tasks(tasks, split="all")) == 2
    with pytest.raises(SuiteError, match="unknown split 'train'; choose tuning, heldout or all"):
        select_tasks(tasks, split="train")
    with pytest.raises(SuiteError, match="no task matches"):
        select_tasks(tasks, kinds=["other"], split="heldout")
    plain = _suite(tmp_path, "kind: k\ntasks:\n  - id: c\n    goal: g\n    check: {status: done}\n",
                   name="plain.yaml")  # fmt: skip
    assert load_suite([plain])[0].split == "tuning"


def test_success_is_reported_per_split(tmp_path):
    result = run_suite(load_suite([_suite(tmp_path, SPLIT_SUITE)]), "scripted", concurrency=2)
    splits = result.to_dict()["splits"]
    assert [(row["split"], row["tasks"], row["succeeded"]) for row in splits] == [
        ("tuning", 1, 0),
        ("heldout", 1, 1),
    ]
    lines = summary_table(result)
    assert any(line.split() == ["tuning", "1", "0/1", "(0%)"] for line in lines)
    assert any(line.split() == ["heldout", "1", "1/1", "(100%)"] for line in lines)


def test_cli_runs_one_split(tmp_path):
    path = _suite(tmp_path, SPLIT_SUITE)
    result = CliRunner().invoke(
        eval_app, ["tasks", str(path), "-m", "scripted", "--split", "heldout"]
    )
    assert result.exit_code == 0, result.output
    assert "[1/1] a: ok" in result.stderr and "heldout      1  1/1 (100%)" in result.stdout
    assert "tuning" not in result.stdout
    bad = CliRunner().invoke(eval_app, ["tasks", str(path), "-m", "scripted", "--split", "dev"])
    assert bad.exit_code == 2 and "unknown split 'dev'" in bad.stderr
