"""BFCL's parallel shape: order-free scoring of several calls, and the wheel the data comes from."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from goalgraph.eval import bfcl_fetch
from goalgraph.eval.bfcl import BfclOptions, judge, load_sample
from goalgraph.eval.bfcl_data import BfclDataError, BfclItem
from goalgraph.eval.bfcl_modes import Attempt, parse_plain_output
from goalgraph.eval.bfcl_scoring import check_parallel

PLAY = {
    "name": "spotify.play",
    "description": "Play tracks of an artist.",
    "parameters": {
        "type": "dict",
        "properties": {"artist": {"type": "string"}, "duration": {"type": "integer"}},
        "required": ["artist", "duration"],
    },
}
ACCEPTED = [
    {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
    {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}},
]
SWIFT = {"spotify.play": {"artist": "Taylor Swift", "duration": 20}}
MAROON = {"spotify.play": {"artist": "Maroon 5", "duration": 15}}


def test_parallel_calls_match_in_any_order() -> None:
    assert check_parallel([PLAY], [SWIFT, MAROON], ACCEPTED).ok
    assert check_parallel([PLAY], [MAROON, SWIFT], ACCEPTED).ok


def test_a_missing_call_fails() -> None:
    verdict = check_parallel([PLAY], [SWIFT], ACCEPTED)
    assert (verdict.ok, verdict.kind) == (False, "wrong_count")
    assert check_parallel([PLAY], [], ACCEPTED).kind == "no_call"


def test_an_extra_call_fails() -> None:
    extra = {"spotify.play": {"artist": "Adele", "duration": 5}}
    verdict = check_parallel([PLAY], [SWIFT, MAROON, extra], ACCEPTED)
    assert (verdict.ok, verdict.kind) == (False, "wrong_count")


def test_each_accepted_call_needs_its_own_call() -> None:
    # Two calls for Taylor Swift: the count is right, but Maroon 5 is never played.
    verdict = check_parallel([PLAY], [SWIFT, SWIFT], ACCEPTED)
    assert (verdict.ok, verdict.kind) == (False, "wrong_value")
    assert "call 2" in verdict.detail
    wrong = {"spotify.pause": {"artist": "Maroon 5", "duration": 15}}
    assert check_parallel([PLAY], [SWIFT, wrong], ACCEPTED).kind == "wrong_function"


def test_the_matching_moves_an_earlier_pair_when_it_must() -> None:
    # The first call fits both accepted calls, the second only the first: a greedy pairing
    # would give the first call to the first accepted call and strand the second.
    either = [
        {"spotify.play": {"artist": ["Taylor Swift", "Maroon 5"], "duration": [20]}},
        {"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
    ]
    assert check_parallel([PLAY], [SWIFT, {"spotify.play": dict(SWIFT["spotify.play"])}], either).ok
    maroon_20 = {"spotify.play": {"artist": "Maroon 5", "duration": 20}}
    assert check_parallel([PLAY], [SWIFT, maroon_20], either).ok


def test_judge_scores_parallel_items_order_free() -> None:
    item = BfclItem(
        id="parallel_0",
        category="parallel",
        messages=[{"role": "user", "content": "play"}],
        functions=[PLAY],
        accepted=ACCEPTED,
    )
    attempt = Attempt(
        calls=[MAROON, SWIFT], raw="", hit_token_limit=False, seconds=0.0, output_tokens=0
    )
    assert judge(item, attempt).ok
    plain = parse_plain_output(
        "[spotify.play(artist='Maroon 5', duration=15), spotify.play(artist='Taylor Swift', "
        "duration=20)]",
        [PLAY],
    )
    assert plain is not None and judge(item, Attempt(plain, "", False, 0.0, 0)).ok


# -- the wheel -----------------------------------------------------------------------------------


def _category_rows(category: str) -> dict[str, str]:
    question = {
        "id": f"{category}_0",
        "question": [[{"role": "user", "content": "Play Taylor Swift and Maroon 5."}]],
        "function": [PLAY],
    }
    answer = {"id": f"{category}_0", "ground_truth": ACCEPTED}
    return {
        f"bfcl_eval/data/BFCL_v4_{category}.json": json.dumps(question) + "\n",
        f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json": json.dumps(answer) + "\n",
    }


def _fake_wheel(folder: Path) -> Path:
    """Build the same bytes every time: entries get a fixed date, not the clock's (two builds a
    second apart would otherwise differ in hash)."""
    wheel = folder / bfcl_fetch.WHEEL_FILE
    entries = {
        name: text
        for category in ("parallel", "parallel_multiple")
        for name, text in _category_rows(category).items()
    }
    entries["bfcl_eval/__init__.py"] = "raise SystemExit('never run')\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return wheel


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_wheel_with_another_hash_is_refused_naming_the_file(tmp_path: Path) -> None:
    made: list[Path] = []
    hashes: list[str] = []

    def download(folder: Path) -> Path:
        made.append(_fake_wheel(folder))
        hashes.append(_sha(made[-1]))
        return made[-1]

    cache = tmp_path / "cache"
    with pytest.raises(BfclDataError) as caught:
        bfcl_fetch.fetch_categories(["parallel"], cache=cache, download=download)
    message = str(caught.value)
    assert bfcl_fetch.WHEEL_FILE in message and bfcl_fetch.WHEEL_SHA256 in message
    assert hashes[0] in message
    assert not bfcl_fetch.has_category(cache, "parallel")  # nothing extracted
    assert not made[0].exists()  # the download folder is gone


def test_the_pinned_wheel_yields_only_the_category_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bfcl_fetch, "WHEEL_SHA256", _sha(_fake_wheel(tmp_path)))
    calls: list[Path] = []

    def download(folder: Path) -> Path:
        calls.append(folder)
        return _fake_wheel(folder)

    cache = tmp_path / "cache"
    assert bfcl_fetch.fetch_categories(["parallel"], cache=cache, download=download) == cache
    files = sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    assert files == ["BFCL_v4_parallel.json", "possible_answer/BFCL_v4_parallel.json"]
    with pytest.raises(BfclDataError):
        bfcl_fetch.fetch_categories(["simple_python"], cache=cache, download=download)


def test_missing_parallel_data_is_fetched_into_the_cache_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bfcl_fetch, "WHEEL_SHA256", _sha(_fake_wheel(tmp_path)))
    downloads: list[Any] = []

    def pip_download(folder: Path) -> Path:
        downloads.append(folder)
        return _fake_wheel(folder)

    monkeypatch.setattr(bfcl_fetch, "_pip_download", pip_download)
    monkeypatch.setenv("GOALGRAPH_HOME", str(tmp_path / "home"))
    shared = tmp_path / "shared"
    shared.mkdir()
    options = BfclOptions(data=shared, categories=("parallel",), limit=None)
    sample = load_sample(options)
    [item] = sample["parallel"]
    assert item.accepted == ACCEPTED and item.functions == [PLAY]
    assert bfcl_fetch.has_category(bfcl_fetch.cache_folder(), "parallel")
    assert bfcl_fetch.cache_folder().is_relative_to(tmp_path)  # GOALGRAPH_HOME, not the repo
    load_sample(options)
    assert len(downloads) == 1
    # A data folder that has the category is read as it is.
    assert bfcl_fetch.resolve_data(bfcl_fetch.cache_folder(), "parallel") == (
        bfcl_fetch.cache_folder()
    )
