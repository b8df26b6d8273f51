"""``goalgraph ingest`` and ``goalgraph memory`` as a user runs them, on the real graph memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF

CLI = Path(sys.executable).with_name("goalgraph")

SECRET = "The lighthouse keeper Marta Quill hid the brass key under the blue stone."
FILLER = {
    1: [
        "The harbour of Porthcurno opens to the south and shelters small fishing boats.",
        "Tides here rise quickly and the sand bars move with every winter storm.",
        "Visitors come in summer to swim and to walk along the cliff paths.",
    ],
    2: [
        "Marta Quill lives in Porthcurno.",
        SECRET,
        "She checked the lamp every evening and wrote the weather in a log book.",
        "The log book records fog, gales and the passing of cargo ships.",
    ],
    3: [
        "The telegraph station connected the cove to the rest of the empire.",
        "Cables ran under the sea to distant countries for more than a century.",
        "Today the station is a museum that explains how the messages travelled.",
    ],
}


def run_cli(
    *args: str, home: Path, stdin: str | None = None, embeddings: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOALGRAPH_HOME": str(home)}
    env["GOALGRAPH_MEMORY__PATH"] = str(home / "memory.sqlite")
    env["GOALGRAPH_MEMORY__EMBEDDINGS"] = "true" if embeddings else "false"
    env.pop("GOALGRAPH_CHECKPOINT_PATH", None)
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=300, env=env, input=stdin
    )


def write_pdf(path: Path, pages: dict[int, list[str]]) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for number in sorted(pages):
        pdf.add_page()
        for sentence in pages[number]:
            pdf.multi_cell(0, 6, sentence)
            pdf.ln(4)
    pdf.set_title("Keeper notes")
    pdf.output(str(path))
    return path


@pytest.fixture
def notes_pdf(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "Keeper Notes.pdf", FILLER)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def search(query: str, home: Path, *extra: str) -> dict:
    done = run_cli("memory", "search", query, "--json", *extra, home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ingest_search_facts_forget(tmp_path, notes_pdf):
    home = tmp_path / "home"
    done = run_cli("ingest", str(notes_pdf), "--chunk-tokens", "30", "--json", home=home)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["session_id"] == "doc:keeper-notes" and report["title"] == "Keeper notes"
    assert report["sections"] == 3 and report["chunks"] >= 4

    # Ingesting again replaces the document rather than adding a copy.
    again = run_cli("ingest", str(notes_pdf), "--chunk-tokens", "30", home=home)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"Keeper Notes.pdf: {report['chunks']} chunks in 3 sections")

    found = search("Where did Marta Quill hide the brass key?", home)
    chunks = [turn for turn in found["turns"] if SECRET in turn["text"]]
    assert chunks, found
    hit = next(turn for turn in chunks if turn["speaker"] == "document")
    assert hit["id"].startswith("keeper-notes#p2-c") and hit["session_id"] == "doc:keeper-notes"
    assert hit["place"]["page"] == 2
    assert len({turn["id"] for turn in found["turns"]}) == len(found["turns"])
    assert found["tokens"] <= 512 and found["rendered"]

    shown = run_cli("memory", "search", "brass key under the blue stone", home=home)
    assert shown.returncode == 0, shown.stderr
    assert f"{hit['id']} (page 2, chunk " in shown.stdout and SECRET in shown.stdout

    facts = run_cli("memory", "facts", "--subject", "Marta Quill", "--json", home=home)
    assert facts.returncode == 0, facts.stderr
    lives = [fact for fact in json.loads(facts.stdout) if fact["predicate"] == "lives_in"]
    assert lives and lives[0]["object"] == "Porthcurno" and lives[0]["holds_now"]
    assert any(source.startswith("keeper-notes#p2-c") for source in lives[0]["sources"])
    listed = run_cli("memory", "facts", home=home)
    assert f"{lives[0]['id']}  Marta Quill lives in Porthcurno  (" in listed.stdout

    refused = run_cli("memory", "forget", "--session", "doc:keeper-notes", home=home, stdin="n\n")
    assert refused.returncode == 1 and "nothing forgotten" in refused.stderr
    assert search("brass key blue stone", home)["turns"]

    forgot = run_cli("memory", "forget", "--session", "doc:keeper-notes", "--yes", home=home)
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.startswith("forgot ") and "(session doc:keeper-notes)" in forgot.stdout
    after = search("Where did Marta Quill hide the brass key?", home)
    assert not [turn for turn in after["turns"] if turn["session_id"] == "doc:keeper-notes"]
    assert json.loads(run_cli("memory", "facts", "--json", home=home).stdout) == []


def test_search_with_embeddings_finds_the_page(tmp_path, notes_pdf):
    home = tmp_path / "home"
    done = run_cli("ingest", str(notes_pdf), home=home, embeddings=True)
    assert done.returncode == 0, done.stderr
    found = run_cli("memory", "search", "brass key", "--json", home=home, embeddings=True)
    assert found.returncode == 0, found.stderr
    turns = json.loads(found.stdout)["turns"]
    assert any(SECRET in t["text"] and t["id"].startswith("keeper-notes#p2") for t in turns)


def test_superseded_facts_show_with_all(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "old.md").write_text("# Old\n\nMarta Quill lives in Porthcurno.\n")
    (tmp_path / "new.md").write_text("# New\n\nMarta Quill lives in Penzance.\n")
    done = run_cli("ingest", str(tmp_path / "old.md"), str(tmp_path / "new.md"), home=home)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 2

    current = run_cli("memory", "facts", "--json", home=home)
    assert [fact["object"] for fact in json.loads(current.stdout)] == ["Penzance"]
    everything = run_cli("memory", "facts", "--all", home=home)
    old_line = next(line for line in everything.stdout.splitlines() if "Porthcurno" in line)
    assert "[superseded by " in old_line and " to now)" not in old_line


def test_forget_needs_exactly_one_target(tmp_path):
    home = tmp_path / "home"
    for args in ([], ["--fact", "f1", "--entity", "Marta"]):
        done = run_cli("memory", "forget", "--yes", *args, home=home)
        assert done.returncode == 2
        assert "exactly one of" in one_line_error(done)
    nothing = run_cli("memory", "forget", "--entity", "Nobody", "--yes", "--json", home=home)
    assert nothing.returncode == 0 and json.loads(nothing.stdout) == {
        "removed": 0,
        "entity": "Nobody",
    }


def test_profile_get_and_set(tmp_path):
    home = tmp_path / "home"
    assert run_cli("memory", "profile", "city", "Lisbon", home=home).stdout == "set city = Lisbon\n"
    assert run_cli("memory", "profile", "city", home=home).stdout == "Lisbon\n"
    assert json.loads(run_cli("memory", "profile", "--json", home=home).stdout) == {
        "city": "Lisbon"
    }
    assert run_cli("memory", "profile", "city", "", home=home).stdout == "removed city\n"
    missing = run_cli("memory", "profile", "city", home=home)
    assert missing.returncode == 2 and "no profile entry 'city'" in one_line_error(missing)


def test_corrupt_memory_database_is_one_line_and_exit_1(tmp_path, notes_pdf):
    home = tmp_path / "home"
    home.mkdir()
    (home / "memory.sqlite").write_bytes(b"garbage" * 1000)
    for args in (
        ("memory", "search", "key"),
        ("memory", "facts"),
        ("ingest", str(notes_pdf)),
    ):
        done = run_cli(*args, home=home)
        assert done.returncode == 1, done.stderr
        line = one_line_error(done)
        assert line.startswith("error: memory database") and "damaged" in line
    assert (home / "memory.sqlite").read_bytes() == b"garbage" * 1000  # Left untouched.


def test_unreadable_documents_are_reported_and_the_rest_ingested(tmp_path):
    home = tmp_path / "home"
    locked = FPDF()
    locked.set_font("helvetica", size=11)
    locked.add_page()
    locked.cell(text="Secret text.")
    locked.set_encryption(owner_password="owner", user_password="user")
    locked.output(str(tmp_path / "locked.pdf"))
    (tmp_path / "garbage.pdf").write_bytes(b"garbage" * 100)
    (tmp_path / "good.md").write_text("# Good\n\nThis one is fine.\n")

    done = run_cli(
        "ingest",
        str(tmp_path / "locked.pdf"),
        str(tmp_path / "garbage.pdf"),
        str(tmp_path / "good.md"),
        home=home,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert "locked.pdf: the PDF is encrypted" in lines[0]
    assert "garbage.pdf: not a readable PDF" in lines[1]
    assert done.stdout.startswith("good.md: 1 chunks in 1 sections -> doc:good")


def test_memory_switched_off(tmp_path):
    env_home = tmp_path / "home"
    spec = tmp_path / "agent.yaml"
    spec.write_text("memory: {backend: none}\n")
    done = run_cli("memory", "facts", "--spec", str(spec), home=env_home)
    assert done.returncode == 2 and "memory is off" in one_line_error(done)
