"""Document ingest: reading, chunking, summaries and the one episode stored per document."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from langchain_core.messages import AIMessage

from goalgraph.memory.ingest import (
    Document,
    IngestError,
    Section,
    chunk_document,
    chunk_place,
    chunk_text,
    document_slug,
    extractive_summary,
    ingest_document,
    model_summarizer,
    read_document,
    split_sentences,
    summarize_within,
)
from goalgraph.memory.types import (
    Fact,
    MemoryBackendError,
    MemoryContext,
    RunRecord,
    Turn,
    approx_tokens,
)
from goalgraph.testing import ScriptedChatModel, garbage

SENTENCES = [
    f"Sentence number {n} talks about {topic} in some detail for the reader."
    for n, topic in enumerate(["rivers", "mountains", "cities", "forests", "oceans"] * 12)
]


class RecordingMemory:
    """A ``MemoryBackend`` test double that records forget and add_episode calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.episodes: dict[str, list[Turn]] = {}

    def add_episode(
        self,
        turns: Sequence[Turn],
        *,
        session_id: str,
        at: datetime | None = None,
        source: str = "message",
        ttl_s: float | None = None,
    ) -> list[str]:
        self.calls.append(("add_episode", {"session_id": session_id, "source": source}))
        self.episodes[session_id] = list(turns)
        return [str(turn.id) for turn in turns]

    def forget(
        self,
        *,
        fact_id: str | None = None,
        session_id: str | None = None,
        entity: str | None = None,
    ) -> int:
        self.calls.append(("forget", {"session_id": session_id}))
        return len(self.episodes.pop(str(session_id), []))

    def search(self, query: str, **_: Any) -> MemoryContext:
        return MemoryContext()

    def facts(self, **_: Any) -> list[Fact]:
        return []

    def get_profile(self, user_id: str = "default") -> dict[str, str]:
        return {}

    def set_profile(self, key: str, value: str, **_: Any) -> None:
        pass

    def sweep(self, now: datetime | None = None) -> int:
        return 0

    def record_run(self, run: RunRecord) -> None:
        pass

    def similar_runs(self, goal: str, *, limit: int = 3) -> list[RunRecord]:
        return []

    def close(self) -> None:
        pass


def write_pdf(path: Path, pages: Sequence[str], *, title: str | None = None) -> Path:
    """Write a PDF with one page per text (an empty text makes a blank page)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    if title:
        pdf.set_title(title)
    pdf.output(str(path))
    return path


# Chunking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_tokens", [12, 40, 200])
def test_chunks_stay_within_budget_and_never_split_a_sentence(chunk_tokens):
    paragraphs = [" ".join(SENTENCES[i : i + 4]) for i in range(0, len(SENTENCES), 4)]
    chunks = chunk_text("\n\n".join(paragraphs), chunk_tokens=chunk_tokens)
    assert all(approx_tokens(chunk.text) <= chunk_tokens for chunk in chunks)
    pieces = [sentence for chunk in chunks for sentence in split_sentences(chunk.text)]
    assert pieces == SENTENCES  # Every sentence whole, once, in order.


def test_chunks_pack_whole_paragraphs_when_they_fit():
    chunks = chunk_text("First para. Short.\n\nSecond para.\n\n\nThird one.", chunk_tokens=200)
    assert [chunk.text for chunk in chunks] == ["First para. Short.\n\nSecond para.\n\nThird one."]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words():
    words = [f"word{n}" for n in range(100)]
    chunks = chunk_text(" ".join(words) + ".", chunk_tokens=10)
    assert all(approx_tokens(chunk.text) <= 10 for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks).split() == [*words[:-1], "word99."]


def test_chunking_uses_the_given_token_counter():
    def count_chars(text: str) -> int:
        return len(text)

    chunks = chunk_text(" ".join(SENTENCES[:10]), chunk_tokens=150, count_tokens=count_chars)
    assert len(chunks) > 3 and all(len(chunk.text) <= 150 for chunk in chunks)


def test_chunk_tokens_must_be_positive():
    with pytest.raises(ValueError, match="chunk_tokens"):
        chunk_text("Some text.", chunk_tokens=0)


def test_chunk_ids_name_the_page_or_section_and_chunk():
    long_page = "\n\n".join(SENTENCES[:12])
    pdf = Document(
        Path("/x/Annual Report 2024.pdf"),
        "Annual report",
        (Section(1, "Page 1", "Short page."), Section(2, "Page 3", long_page, page=3)),
    )
    ids = [chunk.id for chunk in chunk_document(pdf, chunk_tokens=40)]
    assert ids[0] == "annual-report-2024#s1-c1"
    assert ids[1:4] == [f"annual-report-2024#p3-c{n}" for n in (1, 2, 3)]
    assert len(set(ids)) == len(ids)
    assert chunk_place(ids[2]) == {"page": 3, "chunk": 2}
    assert chunk_place("notes#s2-summary") == {"section": 2}
    assert chunk_place("doc:x#7") is None


def test_document_slug():
    assert document_slug("/a/b/My Notes (v2).MD") == "my-notes-v2"
    assert document_slug("___.txt") == "document"


# Reading -------------------------------------------------------------------------------------

MARKDOWN = """Preface before any heading.

# User Guide

Welcome text.

## Install

Run the installer. It takes a minute.

```bash
# not a heading
pip install goalgraph
```

Configuration
-------------

Set the options.

### Advanced

Tune the limits.

## Empty

# Appendix

Last words.
"""


def test_markdown_splits_on_headings_with_their_path(tmp_path):
    file = tmp_path / "guide.md"
    file.write_text(MARKDOWN)
    document = read_document(file)
    assert document.title == "User Guide"
    assert [section.heading for section in document.sections] == [
        "User Guide",  # The preface is named after the title.
        "User Guide",
        "User Guide > Install",
        "User Guide > Configuration",
        "User Guide > Configuration > Advanced",
        "Appendix",
    ]
    assert [section.index for section in document.sections] == [1, 2, 3, 4, 5, 6]
    assert "# not a heading" in document.sections[2].text
    assert all(section.page is None for section in document.sections)


def test_text_file_is_one_section_titled_by_its_name(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("\ufeffOne paragraph.\n\nAnother one.\n")
    document = read_document(file)
    assert document.title == "notes" and document.slug == "notes"
    assert [(s.heading, s.text) for s in document.sections] == [
        ("notes", "One paragraph.\n\nAnother one.")
    ]


def test_pdf_keeps_page_numbers_and_title(tmp_path):
    file = write_pdf(
        tmp_path / "report.pdf",
        ["First page text.", "", "Third page has a hyphen-\nated word."],
        title="Quarterly Report",
    )
    document = read_document(file)
    assert document.title == "Quarterly Report"
    assert [section.page for section in document.sections] == [1, 3]  # The blank page is skipped.
    assert [section.heading for section in document.sections] == ["Page 1", "Page 3"]
    assert [chunk.id for chunk in chunk_document(document)] == ["report#p1-c1", "report#p3-c1"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.docx", b"PK\x03\x04", "unsupported file type '.docx'"),
        ("README", b"text", "unsupported file type '(none)'"),
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n# \n\t\n", "empty"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("garbage.pdf", b"garbage" * 100, "not a readable PDF"),
        ("truncated.pdf", b"%PDF-1.4\n1 0 obj\n<<", "not a readable PDF"),
    ],
)
def test_unreadable_documents_raise_ingest_error(tmp_path, name, content, message):
    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(IngestError, match=re.escape(message)) as caught:
        read_document(file)
    assert str(file) in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        read_document(tmp_path / "nope.md")


def test_encrypted_pdf_is_refused_but_owner_only_protection_is_read(tmp_path):
    locked = FPDF()
    locked.set_font("helvetica", size=11)
    locked.add_page()
    locked.cell(text="Secret text.")
    locked.set_encryption(owner_password="owner", user_password="user")
    locked.output(str(tmp_path / "locked.pdf"))
    with pytest.raises(IngestError, match="encrypted"):
        read_document(tmp_path / "locked.pdf")

    restricted = FPDF()
    restricted.set_font("helvetica", size=11)
    restricted.add_page()
    restricted.cell(text="Readable text.")
    restricted.set_encryption(owner_password="owner")  # Empty user password: anyone may read.
    restricted.output(str(tmp_path / "restricted.pdf"))
    assert read_document(tmp_path / "restricted.pdf").text == "Readable text."


def test_pdf_without_text_says_so(tmp_path):
    file = write_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(IngestError, match="no extractable text"):
        read_document(file)


def test_ingest_error_is_a_value_error_not_a_memory_error():
    assert issubclass(IngestError, ValueError)
    assert not issubclass(IngestError, MemoryBackendError)


# Summaries -----------------------------------------------------------------------------------

CENTRAL_TEXT = (
    "The river flooded the old town in spring. "
    "Bananas are a good source of potassium. "
    "After the flood the town rebuilt the river walls. "
    "My cousin collects stamps from Peru. "
    "The new river walls protected the town during the next flood."
)


def test_extractive_summary_keeps_the_most_central_sentences_in_order():
    summary = extractive_summary(CENTRAL_TEXT, max_sentences=2)
    assert summary == (
        "After the flood the town rebuilt the river walls. "
        "The new river walls protected the town during the next flood."
    )
    assert extractive_summary(CENTRAL_TEXT, max_sentences=3).count(".") == 3


def test_extractive_summary_is_deterministic_and_keeps_short_texts():
    long_text = " ".join(SENTENCES)
    assert extractive_summary(long_text) == extractive_summary(long_text)
    assert len(split_sentences(extractive_summary(long_text))) == 3
    assert extractive_summary("Just one   sentence.") == "Just one sentence."
    assert extractive_summary("   ") == ""


def test_model_summarizer_uses_a_good_reply():
    model = ScriptedChatModel(
        responses=[AIMessage(content="Summary: The town rebuilt its river walls after a flood.")]
    )
    summary = model_summarizer(model)(CENTRAL_TEXT)
    assert summary == "The town rebuilt its river walls after a flood."
    assert CENTRAL_TEXT in str(model.calls[0][-1].content)


def test_model_summarizer_cuts_an_overlong_reply():
    reply = " ".join(f"The river flooded the town {n} times." for n in range(6))
    model = ScriptedChatModel(responses=[AIMessage(content=reply)])
    assert len(split_sentences(model_summarizer(model)(CENTRAL_TEXT))) == 3


def test_model_summarizer_keeps_only_the_opening_prose_of_a_rambling_reply():
    reply = (
        "Here is a summary:\nThe town rebuilt the river walls after the flood. The new walls "
        "held during the next flood. I made the following changes to enhance the text:\n"
        '- Changed "river" to "river walls" for clarity.\n- Added "new" before "walls".'
    )
    model = ScriptedChatModel(responses=[AIMessage(content=reply)])
    assert model_summarizer(model)(CENTRAL_TEXT) == (
        "The town rebuilt the river walls after the flood. "
        "The new walls held during the next flood."
    )


@pytest.mark.parametrize(
    "reply",
    [
        garbage(),
        AIMessage(content=""),
        AIMessage(content='{"summary": "river"}'),
        AIMessage(content="%%%% ### @@@@ 1234 5678 !!!! river"),
        AIMessage(content="Quantum chromodynamics explains gluon confinement nicely."),
    ],
)
def test_model_summarizer_falls_back_on_unusable_replies(reply):
    summary = model_summarizer(ScriptedChatModel(responses=[reply]))(CENTRAL_TEXT)
    assert summary == extractive_summary(CENTRAL_TEXT)


def test_model_summarizer_falls_back_when_the_model_fails():
    def explode(messages: Any, tools: Any) -> AIMessage:
        raise RuntimeError("out of memory")

    summary = model_summarizer(ScriptedChatModel(policy=explode))(CENTRAL_TEXT)
    assert summary == extractive_summary(CENTRAL_TEXT)


def test_summaries_of_long_inputs_are_made_in_rounds():
    seen: list[str] = []

    def first_sentence(text: str) -> str:
        seen.append(text)
        return split_sentences(text)[0]

    texts = [" ".join(SENTENCES[i : i + 5]) for i in range(0, len(SENTENCES), 5)]
    summary = summarize_within(texts, first_sentence, budget_tokens=60)
    assert summary == SENTENCES[0]
    assert len(seen) > 2 and all(approx_tokens(text) <= 60 for text in seen)


# Ingest --------------------------------------------------------------------------------------


def test_ingest_stores_one_episode_with_provenance(tmp_path):
    long_page = "\n\n".join(" ".join(SENTENCES[i : i + 3]) for i in range(0, 18, 3))
    file = write_pdf(tmp_path / "Field Notes.pdf", ["Cover page.", long_page], title="Field notes")
    memory = RecordingMemory()
    progress: list[tuple[int, int]] = []

    report = ingest_document(
        file, memory, chunk_tokens=60, progress=lambda done, total: progress.append((done, total))
    )

    assert memory.calls[0] == ("forget", {"session_id": "doc:field-notes"})
    assert memory.calls[1:] == [
        ("add_episode", {"session_id": "doc:field-notes", "source": "document"})
    ]
    turns = memory.episodes["doc:field-notes"]
    chunks = [turn for turn in turns if turn.speaker == "document"]
    assert [turn.id for turn in chunks] == ["field-notes#p1-c1"] + [
        f"field-notes#p2-c{n}" for n in range(1, len(chunks))
    ]
    assert chunks[1].metadata == {"path": str(file.resolve()), "page": 2, "section": "Page 2"}
    summaries = {turn.id: turn for turn in turns if turn.speaker == "summary"}
    # The cover page's one chunk needs no summary of its own; page 2 gets one.
    assert set(summaries) == {"field-notes#summary", "field-notes#p2-summary"}
    assert summaries["field-notes#p2-summary"].metadata["covers"] == [c.id for c in chunks[1:]]
    document_summary = summaries["field-notes#summary"]
    assert turns[0] is document_summary
    assert document_summary.metadata["covers"] == [c.id for c in chunks]
    assert document_summary.metadata["sections"] == ["field-notes#p2-summary"]
    assert report.doc_id == "field-notes" and report.session_id == "doc:field-notes"
    assert (report.chunks, report.sections, report.title) == (len(chunks), 2, "Field notes")
    assert report.summary == document_summary.text and report.seconds >= 0
    assert report.turn_ids == tuple(turn.id for turn in turns)
    assert progress[-1] == (len(chunks), len(chunks))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert "Field Notes.pdf: " in report.describe() and report.to_dict()["chunks"] == len(chunks)


def test_an_unreadable_file_leaves_memory_untouched(tmp_path):
    memory = RecordingMemory()
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
    with pytest.raises(IngestError):
        ingest_document(tmp_path / "bad.pdf", memory)
    assert memory.calls == []


def test_model_summaries_are_used_for_sections_and_the_document(tmp_path):
    file = tmp_path / "guide.md"
    file.write_text("# Guide\n\n" + " ".join(SENTENCES[:8]) + "\n\n## More\n\nOne more line here.")
    model = ScriptedChatModel(
        policy=lambda messages, tools: AIMessage(content="Sentence about rivers and mountains.")
    )
    memory = RecordingMemory()
    report = ingest_document(file, memory, summarize=model_summarizer(model))
    assert report.summary == "Sentence about rivers and mountains."
    assert len(model.calls) == 3  # Two sections, then the document.


def test_reingesting_replaces_the_earlier_episode_in_graph_memory(tmp_path):
    from goalgraph.memory.graph import GraphMemory

    file = tmp_path / "plan.md"
    file.write_text("# Plan\n\nThe launch codeword is AZURE-HERON.\n")
    with GraphMemory(tmp_path / "memory.sqlite") as memory:
        ingest_document(file, memory)
        file.write_text("# Plan\n\nThe launch codeword is CRIMSON-OTTER.\n")
        ingest_document(file, memory)
        found = memory.search("launch codeword", session_id="doc:plan").turns
        texts = " ".join(turn.text for turn in found)
        assert "CRIMSON-OTTER" in texts and "AZURE-HERON" not in texts
        assert {turn.id for turn in found} <= {"plan#s1-c1", "plan#summary"}
