"""BFCL evaluation with the real bundled model, on hand-written items in BFCL's format.

Greedy decoding of a 135M model decides accuracy, so the tests assert what must hold whatever it
answers: constrained output always parses and names an offered function or no call, plain output
is recorded with its parsability, and the CLI and the benchmark script run end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import load_benchmark

from goalgraph.eval.bfcl import BfclOptions, load_chat, run_bfcl
from goalgraph.llm.chat import LocalChatModel

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

WEATHER = {
    "name": "weather.current",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "dict",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "unit": {"type": "string", "description": "Can be 'celsius' or 'fahrenheit'."},
        },
        "required": ["city"],
    },
}
SQUARE = {
    "name": "square_area",
    "description": "Calculate the area of a square from its side length.",
    "parameters": {
        "type": "dict",
        "properties": {"side": {"type": "float", "description": "The side length."}},
        "required": ["side"],
    },
}
TRANSLATE = {
    "name": "translate_text",
    "description": "Translate a text into another language.",
    "parameters": {
        "type": "dict",
        "properties": {
            "text": {"type": "string", "description": "The text to translate."},
            "language": {"type": "string", "description": "The target language."},
        },
        "required": ["text", "language"],
    },
}


def _item(ident: str, question: str, functions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": ident,
        "question": [[{"role": "user", "content": question}]],
        "function": functions,
    }


ITEMS: dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {
    "simple_python": [
        (
            _item("simple_python_0", "What is the weather in Paris right now?", [WEATHER]),
            {"weather.current": {"city": ["Paris"], "unit": ["", "celsius"]}},
        ),
        (
            _item("simple_python_1", "Find the area of a square with side 4.", [SQUARE]),
            {"square_area": {"side": [4.0]}},
        ),
    ],
    "multiple": [
        (
            _item("multiple_0", "Translate 'good morning' into French.", [SQUARE, TRANSLATE]),
            {"translate_text": {"text": ["good morning"], "language": ["French", "fr"]}},
        )
    ],
    "irrelevance": [
        (_item("irrelevance_0", "Who wrote the novel Moby Dick?", [SQUARE]), None),
    ],
}


def write_items(folder: Path, *, per_category: int) -> Path:
    """Write the hand-written items in BFCL's file layout and return the folder."""
    (folder / "possible_answer").mkdir(parents=True, exist_ok=True)
    for category, rows in ITEMS.items():
        chosen = rows[:per_category]
        questions = "\n".join(json.dumps(item) for item, _ in chosen)
        (folder / f"BFCL_v4_{category}.json").write_text(questions + "\n")
        if category != "irrelevance":
            answers = [{"id": item["id"], "ground_truth": [truth]} for item, truth in chosen]
            text = "\n".join(json.dumps(answer) for answer in answers)
            (folder / "possible_answer" / f"BFCL_v4_{category}.json").write_text(text + "\n")
    return folder


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> BfclOptions:
    data = write_items(tmp_path_factory.mktemp("bfcl"), per_category=2)
    return BfclOptions(data=data, limit=None, threads=1, max_new_tokens=96)


@pytest.fixture(scope="module")
def chat(options: BfclOptions) -> LocalChatModel:
    return load_chat(options)


@pytest.fixture(scope="module")
def result(options: BfclOptions, chat: LocalChatModel) -> dict[str, Any]:
    return run_bfcl(options, chat=chat)


def test_every_item_is_answered_in_every_mode(result: dict[str, Any]) -> None:
    records = result["items"]
    assert result["options"]["sample_sizes"] == {
        "simple_python": 2,
        "multiple": 1,
        "irrelevance": 1,
    }
    assert len(records) == 16
    for mode in ("constrained", "gated", "grounded", "plain"):
        mine = [r for r in records if r["mode"] == mode]
        assert [r["id"] for r in mine] == [
            "simple_python_0",
            "simple_python_1",
            "multiple_0",
            "irrelevance_0",
        ]
        assert all(r["seconds"] > 0 and r["output_tokens"] > 0 for r in mine)
        assert all(r["ok"] == (r["kind"] is None) for r in mine)
    summary = result["summary"]
    assert set(summary) == {"constrained", "gated", "grounded", "plain"}
    for mode in summary.values():
        assert 0.0 <= mode["relevance_irrelevance_mean"] <= 1.0
        assert mode["latency_p95_s"] >= mode["latency_p50_s"] > 0


def test_constrained_output_always_parses_and_names_an_offered_function(
    result: dict[str, Any], options: BfclOptions
) -> None:
    offered = {
        item["id"]: {fn["name"] for fn in item["function"]}
        for rows in ITEMS.values()
        for item, _ in rows
    }
    for record in (r for r in result["items"] if r["mode"] != "plain"):
        assert record["parsable"], record
        assert record["kind"] not in ("unparsable", "token_limit"), record
        assert len(record["calls"]) <= 1
        if record["dropped_call"]:  # Argument grounding turned an invented call into no call.
            assert record["mode"] == "grounded" and record["calls"] == [], record
            assert record["dropped_call"]["invented"], record
        for call in record["calls"]:
            (name,) = call
            assert name in offered[record["id"]], record


def test_the_gate_keeps_the_square_function_from_a_question_about_moby_dick(
    result: dict[str, Any],
) -> None:
    (gated,) = [r for r in result["items"] if r["mode"] == "gated" and r["id"] == "irrelevance_0"]
    assert gated["calls"] == [] and gated["ok"], gated


def test_plain_output_is_recorded_with_its_parsability(result: dict[str, Any]) -> None:
    for record in (r for r in result["items"] if r["mode"] == "plain"):
        assert isinstance(record["raw"], str)
        assert record["parsable"] == (record["calls"] is not None)
        if not record["parsable"] and record["category"] != "irrelevance":
            assert record["kind"] in ("unparsable", "token_limit")


def test_benchmark_script_writes_json_plot_and_markdown(
    tmp_path: Path, chat: LocalChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_items(tmp_path / "data", per_category=1)
    out = tmp_path / "results" / "bfcl.json"
    bench = load_benchmark("bfcl")
    args = ["--data", str(data), "--categories", "irrelevance", "--threads", "1"]
    result = bench.main([*args, "--quick", "--no-progress", "--out", str(out)])
    assert set(result["summary"]) == {"constrained", "gated", "grounded", "plain"}
    assert json.loads(out.read_text())["options"]["sample_sizes"] == {"irrelevance": 1}
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "| irrelevance | constrained |" in out.with_suffix(".md").read_text()
    assert "rel/irrel mean" in capsys.readouterr().out


def test_gate_benchmark_reports_auc_and_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_items(tmp_path / "data", per_category=2)
    scores = load_benchmark("bfcl_gate").main(["--data", str(data), "--limit", "1", "--no-model"])
    tuning = scores["tuning"]
    assert len(tuning["simple_python"]["gate"]) == 1 and "model" not in tuning["irrelevance"]
    # The hand-written relevant question is closer to its function than Moby Dick to a square.
    relevant = scores["sample"]["simple_python"]["gate"] + tuning["simple_python"]["gate"]
    assert min(relevant) > max(scores["sample"]["irrelevance"]["gate"])
    out = capsys.readouterr().out
    assert "AUC" in out and "irrelevant stopped" in out


def test_gate_benchmark_scores_items_with_the_bundled_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_items(tmp_path / "data", per_category=2)
    bench = load_benchmark("bfcl_gate")
    scores = bench.main(
        ["--data", str(data), "--limit", "1", "--model-items", "1", "--threshold", "0"]
    )
    rows = [row for split in scores.values() for row in split.values() if row["gate"]]
    assert len(rows) == 4 and all(len(row["model"]) == len(row["channel"]) == 1 for row in rows)
    # Each score compares two real log-probabilities; an empty comparison would give exactly 0.
    assert all(row["model"][0] != 0 and row["channel"][0] != 0 for row in rows)
    assert "channel, gate >= 0.0" in capsys.readouterr().out


def test_grounding_benchmark_counts_accepted_answers_and_stopped_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_items(tmp_path / "data", per_category=2)
    bench = load_benchmark("bfcl_grounding")
    figures = bench.main(["--data", str(data), "--limit", "1", "--model-items", "1"])
    # Every hand-written accepted call copies its values from the question.
    assert figures["accepted"] == {
        "simple_python": {"calls": 2, "grounded": 2},
        "multiple": {"calls": 1, "grounded": 1},
    }
    # Only simple_python has an item outside the (1-item) sample.
    (row,) = figures["model"]["simple_python"]
    assert set(row) == {"called", "correct", "stopped"}
    assert figures["model"]["irrelevance"] == []
    assert not (row["stopped"] and row["correct"]), row
    out = capsys.readouterr().out
    assert "accepted calls" in out and "wrong stopped" in out


def test_cli_quick_run_exits_zero_and_prints_the_table(tmp_path: Path) -> None:
    data = write_items(tmp_path / "data", per_category=1)
    command = [sys.executable, "-m", "goalgraph.cli", "eval", "bfcl", "--quick"]
    command += ["--data", str(data), "--threads", "1", "--max-new-tokens", "64", "--no-progress"]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "accuracy" in done.stdout and "rel/irrel mean" in done.stdout
    for category in ("simple_python", "multiple", "irrelevance"):
        assert category in done.stdout


def test_cli_reports_missing_data_in_one_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "goalgraph.cli", "eval", "bfcl", "--data", str(tmp_path / "x")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: BFCL data folder not found")
    assert len(done.stderr.strip().splitlines()) == 1
