"""Long documents into memory: read, chunk, summarise hierarchically, store as one episode.

A document (``.txt``, ``.md``/``.markdown`` or ``.pdf``) is read into sections: markdown splits on
its headings, a PDF keeps one section per page (with the page number), plain text is one section.
Each section's paragraphs are packed into chunks of about ``chunk_tokens`` tokens without splitting
a sentence (unless one sentence alone is too long). Every section is summarised from its chunks and
the document from its section summaries; chunks and summaries are then stored as ONE episode of
session ``doc:<slug>``, so every answer memory gives about the document points back at a place in
it: chunk ids read ``<slug>#p3-c2`` (page 3, chunk 2) or ``<slug>#s2-c1`` (section 2, chunk 1).

Example:
    >>> from goalgraph.memory.ingest import chunk_text
    >>> [chunk.text for chunk in chunk_text("One. Two.\\n\\nThree.", chunk_tokens=200)]
    ['One. Two.\\n\\nThree.']
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from goalgraph.memory.backend import MemoryBackend
from goalgraph.memory.types import CountTokens, Turn, approx_tokens

__all__ = [
    "DOCUMENT_SUFFIXES",
    "Chunk",
    "Document",
    "IngestError",
    "IngestReport",
    "Progress",
    "Section",
    "Summarize",
    "chunk_document",
    "chunk_place",
    "chunk_text",
    "document_slug",
    "extractive_summary",
    "ingest_document",
    "model_summarizer",
    "read_document",
    "split_sentences",
    "summarize_within",
]

log = logging.getLogger(__name__)

Summarize = Callable[[str], str]
"""Turns a text into a short summary of it."""

Progress = Callable[[int, int], None]
"""Called with ``(chunks done, chunks in total)`` while a document is ingested."""

DOCUMENT_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf"}
"""The file types ``read_document`` understands, by lower-case suffix."""

SUMMARY_INPUT_TOKENS = 1500
"""Most tokens handed to the summariser at once; longer inputs are summarised in rounds."""

MODEL_SUMMARY_MAX_WORDS = 120
"""A model summary longer than this is cut back to its first sentences."""


class IngestError(ValueError):
    """A document cannot be ingested: missing, empty, unreadable, encrypted or of an unknown type.

    A ``ValueError`` rather than a ``MemoryBackendError``: the input is at fault, not memory, and
    nothing has been written when it is raised. The message names the file and what to do.
    """


@dataclass(frozen=True)
class Section:
    """A part of a document: a markdown section, a PDF page, or a whole text file."""

    index: int
    """Its position in the document, from 1."""
    heading: str
    """Its heading path (``Intro > Background``), ``Page 3`` for a PDF page, or the title."""
    text: str
    """Its body text, paragraphs separated by blank lines."""
    page: int | None = None
    """The PDF page number, from 1; ``None`` for other formats."""

    @property
    def anchor(self) -> str:
        """Return the place-in-document part of chunk ids: ``p3`` (page 3) or ``s2`` (section 2)."""
        return f"p{self.page}" if self.page is not None else f"s{self.index}"


@dataclass(frozen=True)
class Document:
    """A document read from disk, split into sections."""

    path: Path
    """The file it was read from (resolved)."""
    title: str
    """Its title: the PDF's title, the first markdown ``#`` heading, or the file name."""
    sections: tuple[Section, ...]
    """Its sections, in order; none is empty."""

    @property
    def slug(self) -> str:
        """Return the document's id: its file name as lower-case words joined by hyphens."""
        return document_slug(self.path)

    @property
    def text(self) -> str:
        """Return the whole text, sections separated by blank lines."""
        return "\n\n".join(section.text for section in self.sections)


@dataclass(frozen=True)
class Chunk:
    """A piece of a section of about ``chunk_tokens`` tokens, never ending mid-sentence."""

    id: str
    """``<slug>#<anchor>-c<n>``, e.g. ``report#p3-c2``; empty until ``chunk_document`` names it."""
    text: str
    """Whole paragraphs or sentences of the section."""
    section: Section | None = None
    """The section it comes from."""


@dataclass(frozen=True)
class IngestReport:
    """What ``ingest_document`` stored."""

    doc_id: str
    """The document's slug, the prefix of every chunk id."""
    session_id: str
    """The memory session holding it, ``doc:<slug>``; forget it to remove the document."""
    path: str
    """The file read."""
    title: str
    """The document's title."""
    chunks: int
    """How many chunks were stored."""
    sections: int
    """How many sections they came from."""
    summary: str
    """The document summary."""
    seconds: float
    """Wall time of the whole ingest."""
    turn_ids: tuple[str, ...] = field(default=(), repr=False)
    """The ids memory stored, in order: document summary, then each section's chunks and summary."""

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        data = asdict(self)
        data["turn_ids"] = list(self.turn_ids)
        return data

    def describe(self) -> str:
        """Return the report as one line."""
        return (
            f"{Path(self.path).name}: {self.chunks} chunks in {self.sections} sections -> "
            f"{self.session_id} ({self.seconds:.1f} s)"
        )


# Reading ---------------------------------------------------------------------------------------


def document_slug(path: str | Path) -> str:
    """Return a document id from a file name: ``Annual Report 2024.pdf`` -> ``annual-report-2024``.

    Two files with the same name (in different folders) get the same slug, so ingesting one
    replaces the other; pass ``doc_id`` to ``ingest_document`` to keep both.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")
    return slug or "document"


def read_document(path: str | Path) -> Document:
    """Read a ``.txt``, ``.md``/``.markdown`` or ``.pdf`` file into sections.

    Args:
        path: The file.

    Returns:
        The document; every section has text.

    Raises:
        IngestError: The file is missing, of an unknown type, empty, not UTF-8 text, or a PDF that
            is damaged, encrypted or has no extractable text.
    """
    file = Path(path).expanduser()
    kind = DOCUMENT_SUFFIXES.get(file.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(DOCUMENT_SUFFIXES))
        raise IngestError(f"{file}: unsupported file type {file.suffix or '(none)'!r}; use {known}")
    if not file.is_file():
        raise IngestError(f"{file}: no such file")
    if kind == "pdf":
        title, sections = _read_pdf(file)
    else:
        text = _read_text(file)
        title, sections = _markdown_sections(text, file) if kind == "markdown" else (file.stem, ())
        if kind == "text":
            sections = _sections_with_text([(title, text, None)])
    if not sections:
        raise IngestError(f"{file}: the document is empty")
    return Document(path=file.resolve(), title=title, sections=sections)


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(f"{file}: not UTF-8 text; convert it to UTF-8 first") from None
    except OSError as exc:
        raise IngestError(f"{file}: cannot be read ({exc.strerror or exc})") from None


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _markdown_sections(text: str, file: Path) -> tuple[str, tuple[Section, ...]]:
    """Split markdown on its ATX (``## Name``) and setext headings, ignoring code fences.

    A section's heading is its heading path (``Guide > Install``); text before the first heading
    is a section named after the title. The title is the first level-1 heading, else the file name.
    """
    path: list[str] = []  # Heading names by level; "" where a level was skipped.
    parts: list[tuple[str, str, int | None]] = []
    body: list[str] = []
    title = ""
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _heading(line, body)
        if heading is None:
            body.append(line)
            continue
        level, name = heading
        parts.append((" > ".join(h for h in path if h), "\n".join(body), None))
        body.clear()
        path[level - 1 :] = [*[""] * (level - 1 - len(path)), name]
        title = title or (name if level == 1 else "")
    parts.append((" > ".join(h for h in path if h), "\n".join(body), None))
    title = title or file.stem
    return title, _sections_with_text(
        (heading or title, body, page) for heading, body, page in parts
    )


def _heading(line: str, body: list[str]) -> tuple[int, str] | None:
    """Return ``(level, name)`` when ``line`` makes a heading, else ``None``.

    For a setext underline (``===`` or ``---`` under a one-line paragraph) the heading's name is
    the line before it, which is taken off ``body``.
    """
    atx = _ATX_HEADING.match(line)
    if atx:
        return len(atx.group(1)), atx.group(2)
    underline = _SETEXT_UNDERLINE.match(line)
    one_line_paragraph = (
        bool(body) and bool(body[-1].strip()) and (len(body) < 2 or not body[-2].strip())
    )
    if underline and one_line_paragraph and not _is_block_marker(body[-1]):
        return (1 if underline.group(1).startswith("=") else 2), body.pop().strip()
    return None


def _is_block_marker(line: str) -> bool:
    """Tell whether a line is a list item, quote, table row or rule (never a setext heading)."""
    return bool(re.match(r"^\s*(?:[-*+>|]|\d+[.)]\s|(?:=+|-+)\s*$)", line))


def _read_pdf(file: Path) -> tuple[str, tuple[Section, ...]]:
    """Read a PDF's text page by page through ``pypdf``."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    try:
        with _quiet_pypdf():
            reader = PdfReader(file)
            if reader.is_encrypted and not reader.decrypt(""):
                raise IngestError(
                    f"{file}: the PDF is encrypted; decrypt it first (qpdf --decrypt)"
                )
            pages = [(page.extract_text() or "") for page in reader.pages]
            metadata = reader.metadata
            metadata_title = metadata.get("/Title") if metadata else None
    except IngestError:
        raise
    except FileNotDecryptedError:
        raise IngestError(f"{file}: the PDF is encrypted; decrypt it first") from None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(f"{file}: not a readable PDF ({exc})") from None
    except Exception as exc:  # pypdf on damaged files raises almost anything.
        raise IngestError(f"{file}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    sections = _sections_with_text(
        (f"Page {number}", _pdf_paragraphs(text), number)
        for number, text in enumerate(pages, start=1)
    )
    if not sections and pages:
        raise IngestError(f"{file}: the PDF has no extractable text (scanned? run OCR on it first)")
    title = str(metadata_title).strip() if metadata_title else ""
    return title or file.stem, sections


@contextlib.contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Keep pypdf's warnings about damaged files off the console; errors still raise."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _pdf_paragraphs(page_text: str) -> str:
    """Rejoin a PDF page's wrapped lines into paragraphs (blank lines stay breaks)."""
    blocks = re.split(r"\n\s*\n", page_text)
    return "\n\n".join(_join_wrapped_lines(block) for block in blocks)


def _join_wrapped_lines(block: str) -> str:
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", block)  # De-hyphenate words broken across lines.
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _sections_with_text(
    parts: Iterator[tuple[str, str, int | None]] | Sequence[tuple[str, str, int | None]],
) -> tuple[Section, ...]:
    """Number the parts that have text as sections, dropping empty ones."""
    sections: list[Section] = []
    for heading, text, page in parts:
        body = text.strip()
        if body:
            sections.append(Section(len(sections) + 1, heading, body, page))
    return tuple(sections)


# Chunking --------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-Ý])")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences at ``.``, ``!`` or ``?`` followed by a capital or digit.

    Whitespace inside a sentence is collapsed to single spaces.
    """
    flat = " ".join(text.split())
    if not flat:
        return []
    return [sentence.strip() for sentence in _SENTENCE_END.split(flat) if sentence.strip()]


def chunk_text(
    text: str, *, chunk_tokens: int = 200, count_tokens: CountTokens = approx_tokens
) -> list[Chunk]:
    """Pack ``text``'s paragraphs into chunks of at most ``chunk_tokens`` tokens.

    Paragraphs (separated by blank lines) are kept whole when they fit; a longer paragraph is
    packed sentence by sentence, and only a sentence longer than ``chunk_tokens`` by itself is cut
    (between words). Chunks come back without ids; ``chunk_document`` names them.

    Args:
        text: The text, paragraphs separated by blank lines.
        chunk_tokens: The most tokens a chunk may cost.
        count_tokens: Counts a text's tokens.

    Raises:
        ValueError: ``chunk_tokens`` is less than 1.
    """
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be at least 1, not {chunk_tokens}")
    chunks = _join_within(_pieces(text, chunk_tokens, count_tokens), chunk_tokens, count_tokens)
    return [Chunk(id="", text=chunk) for chunk in chunks]


def _join_within(
    pieces: Iterable[tuple[str, str]], budget_tokens: int, count_tokens: CountTokens
) -> list[str]:
    """Join ``(piece, separator before it)`` pairs greedily into texts of at most
    ``budget_tokens`` (a single piece over the budget stands alone)."""
    joined: list[str] = []
    current = ""
    for piece, separator in pieces:
        candidate = f"{current}{separator}{piece}" if current else piece
        if current and count_tokens(candidate) > budget_tokens:
            joined.append(current)
            candidate = piece
        current = candidate
    if current:
        joined.append(current)
    return joined


def _pieces(text: str, chunk_tokens: int, count_tokens: CountTokens) -> Iterator[tuple[str, str]]:
    """Yield ``(piece, separator before it)``: whole paragraphs, or sentences of long ones."""
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        if count_tokens(flat) <= chunk_tokens:
            yield flat, "\n\n"
            continue
        for number, sentence in enumerate(split_sentences(flat)):
            separator = "\n\n" if number == 0 else " "
            if count_tokens(sentence) <= chunk_tokens:
                yield sentence, separator
                continue
            for part_number, part in enumerate(_cut_words(sentence, chunk_tokens, count_tokens)):
                yield part, separator if part_number == 0 else " "


def _cut_words(sentence: str, chunk_tokens: int, count_tokens: CountTokens) -> Iterator[str]:
    """Cut a sentence too long for one chunk into runs of words that fit."""
    words: list[str] = []
    for word in sentence.split():
        if words and count_tokens(" ".join([*words, word])) > chunk_tokens:
            yield " ".join(words)
            words = []
        words.append(word)
    if words:
        yield " ".join(words)


def chunk_document(
    document: Document,
    *,
    chunk_tokens: int = 200,
    count_tokens: CountTokens = approx_tokens,
    doc_id: str | None = None,
) -> list[Chunk]:
    """Chunk every section of ``document``; ids read ``<doc id>#<anchor>-c<n>`` (n from 1).

    Chunks never cross a section (or page) boundary, so each id names one place in the document.
    """
    slug = doc_id or document.slug
    chunks: list[Chunk] = []
    for section in document.sections:
        pieces = chunk_text(section.text, chunk_tokens=chunk_tokens, count_tokens=count_tokens)
        chunks.extend(
            Chunk(id=f"{slug}#{section.anchor}-c{number}", text=piece.text, section=section)
            for number, piece in enumerate(pieces, start=1)
        )
    return chunks


# Summaries -------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not now of off on once only or other our ours out over own same she should
    so some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your yours""".split()  # noqa: SIM905 - a word list reads better as prose.
)
_MAX_SUMMARY_SENTENCE_WORDS = 60


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def extractive_summary(text: str, max_sentences: int = 3) -> str:
    """Summarise ``text`` by its ``max_sentences`` most central sentences, in their original order.

    A sentence's centrality is its summed word overlap with every other sentence (content words,
    normalised by sentence length as in TextRank). Deterministic and fast; no model. Very long
    sentences are cut at 60 words.

    Args:
        text: What to summarise.
        max_sentences: The most sentences kept.
    """
    sentences = split_sentences(text)
    if len(sentences) > max_sentences:
        scores = _centrality(sentences)
        ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
        sentences = [sentences[i] for i in sorted(ranked[:max_sentences])]
    return " ".join(_clip_words(sentence, _MAX_SUMMARY_SENTENCE_WORDS) for sentence in sentences)


def _centrality(sentences: Sequence[str]) -> list[float]:
    words = [_content_words(sentence) for sentence in sentences]
    scores = [0.0] * len(sentences)
    for i, first in enumerate(words):
        for j in range(i + 1, len(words)):
            second = words[j]
            if len(first) < 2 or len(second) < 2:
                continue
            overlap = len(first & second) / (math.log(len(first)) + math.log(len(second)))
            scores[i] += overlap
            scores[j] += overlap
    return scores


def _clip_words(sentence: str, limit: int) -> str:
    words = sentence.split()
    return sentence if len(words) <= limit else " ".join(words[:limit]) + " …"


_SUMMARY_SYSTEM_PROMPT = (
    "You summarise documents. Reply with a summary of the user's text in one to {n} plain "
    "sentences: its main points only, no preamble, no lists, no markdown."
)
_PREAMBLE = re.compile(
    r"^\s*(?:here(?: is|'s) (?:a |the )?(?:short )?summary[^:]*:|summary:)\s*", re.I
)


_AFTER_PROSE = re.compile(r"\n\s*\n|\n\s*(?:[-*•#>|]|\d+[.)])\s")
"""Where a reply's opening prose ends: a blank line, or a list item, heading, quote or table."""
_META = re.compile(r"(?:I|I've|I'm|I have|I made|Note|Let me|Feel free|This summary)\b", re.I)
"""A sentence about the answer itself rather than the text, which ends the summary."""


def model_summarizer(
    chat_model: Any,
    *,
    max_sentences: int = 3,
    max_input_tokens: int = SUMMARY_INPUT_TOKENS,
    fallback: Summarize = extractive_summary,
) -> Summarize:
    """Return a summariser that asks ``chat_model`` for a one-to-three sentence summary.

    Falls back to ``fallback`` (the extractive summary) when the model raises, or replies with
    nothing, with something that is not prose, or with words that are not in the text (garbage).
    An overlong reply is cut to its first ``max_sentences`` sentences.

    Args:
        chat_model: A LangChain chat model (anything with ``invoke(messages)``).
        max_sentences: The most sentences asked for and kept.
        max_input_tokens: Input beyond this many tokens (approximately) is cut before the call.
        fallback: The summariser used when the model's answer is unusable.
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    system = SystemMessage(content=_SUMMARY_SYSTEM_PROMPT.format(n=max_sentences))
    max_words = int(max_input_tokens * 1.3)

    def summarize(text: str) -> str:
        source = " ".join(text.split()[:max_words])
        if not source:
            return ""
        try:
            reply = chat_model.invoke([system, HumanMessage(content=source)])
        except Exception as exc:  # A summary is never worth failing the ingest over.
            log.warning("model summary failed (%s); using the extractive summary", exc)
            return fallback(text)
        summary = _usable_summary(_reply_text(reply), source, max_sentences)
        if summary is None:
            log.info("model summary unusable; using the extractive summary")
            return fallback(text)
        return summary

    return summarize


def _reply_text(reply: Any) -> str:
    content = getattr(reply, "content", reply)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str | dict)
        )
    return ""


def _usable_summary(reply: str, source: str, max_sentences: int) -> str | None:
    """Return the reply cleaned up as a summary, or ``None`` when it is not a usable one.

    Only the reply's opening prose counts: small models often go on with lists or remarks about
    their own answer ("I made the following changes"), which are cut off.
    """
    text = re.sub(r"<think>.*?</think>", " ", reply, flags=re.S)
    text = _PREAMBLE.sub("", text.strip(), count=1)
    text = _AFTER_PROSE.split(text, maxsplit=1)[0]
    text = " ".join(text.split()).strip('"').strip()
    if len(text.split()) < 3 or text[0] in "{[<`#|":
        return None
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * sum(not ch.isspace() for ch in text):
        return None
    words = _content_words(text)
    if not words or len(words & _content_words(source)) < max(1, 0.25 * len(words)):
        return None  # Not about the text: made up, or garbage.
    sentences = list(itertools.takewhile(lambda s: not _META.match(s), split_sentences(text)))
    if not sentences:
        return None
    return _clip_words(" ".join(sentences[:max_sentences]), MODEL_SUMMARY_MAX_WORDS)


def summarize_within(
    texts: Sequence[str],
    summarize: Summarize,
    *,
    budget_tokens: int = SUMMARY_INPUT_TOKENS,
    count_tokens: CountTokens = approx_tokens,
) -> str:
    """Summarise ``texts`` together, in rounds when they are too long for one call.

    Texts are packed into batches of at most ``budget_tokens``; each batch is summarised and the
    summaries take the texts' place until everything fits in one call.
    """
    current = [text for text in texts if text.strip()]
    while len(current) > 1 and count_tokens("\n\n".join(current)) > budget_tokens:
        batches = _join_within(((text, "\n\n") for text in current), budget_tokens, count_tokens)
        shorter = [summarize(batch) for batch in batches]
        if count_tokens("\n\n".join(shorter)) >= count_tokens("\n\n".join(current)):
            break  # Not getting shorter; summarise what there is in one go.
        current = [text for text in shorter if text.strip()]
    return summarize("\n\n".join(current)) if current else ""


# Ingest ----------------------------------------------------------------------------------------


def ingest_document(
    path: str | Path,
    memory: MemoryBackend,
    *,
    summarize: Summarize = extractive_summary,
    chunk_tokens: int = 200,
    count_tokens: CountTokens = approx_tokens,
    progress: Progress | None = None,
    doc_id: str | None = None,
) -> IngestReport:
    """Read, chunk and summarise a document, and store it in ``memory`` as one episode.

    The episode belongs to session ``doc:<slug>`` with source ``document``. Its turns are the
    document summary (speaker ``summary``, id ``<slug>#summary``), then for each section its chunks
    (speaker ``document``, id ``<slug>#p3-c2``, metadata ``path``, ``page``, ``section``) followed
    by the section's summary (speaker ``summary``, id ``<slug>#p3-summary``, metadata ``covers``:
    the chunk ids it summarises). A section (or a whole document) of one chunk that its summary
    would merely repeat gets no summary turn.

    Re-ingesting the same file (or any file with the same slug) REPLACES the earlier episode:
    the session is forgotten, with the facts learned only from it, before the new one is stored.
    The document is read and summarised first, so a file that cannot be read leaves memory as it
    was.

    Args:
        path: A ``.txt``, ``.md``/``.markdown`` or ``.pdf`` file.
        memory: Where to store it.
        summarize: Summarises a text (default: ``extractive_summary``; see ``model_summarizer``).
        chunk_tokens: The most tokens a chunk may cost.
        count_tokens: Counts a text's tokens.
        progress: Called with ``(chunks summarised, total chunks)`` after each section, and with
            ``(total, total)`` once the episode is stored.
        doc_id: The document id (default: the file name's slug); chunk ids and the session use it.

    Returns:
        What was stored.

    Raises:
        IngestError: The document cannot be read (see ``read_document``).
        MemoryBackendError: Memory cannot be written.
    """
    started = time.perf_counter()
    document = read_document(path)
    slug = doc_id or document.slug
    chunks = chunk_document(
        document, chunk_tokens=chunk_tokens, count_tokens=count_tokens, doc_id=slug
    )
    section_turns, section_summaries = _summarise_sections(
        chunks, slug, document, summarize, count_tokens, progress
    )
    summary = summarize_within(section_summaries, summarize, count_tokens=count_tokens)
    summary_turn = Turn(
        text=summary or document.title,
        speaker="summary",
        id=f"{slug}#summary",
        metadata={
            "path": str(document.path),
            "title": document.title,
            "level": "document",
            "covers": [chunk.id for chunk in chunks],
            "sections": [turn.id for turn in section_turns if turn.speaker == "summary"],
        },
    )
    session_id = f"doc:{slug}"
    memory.forget(session_id=session_id)
    # A one-chunk document's summary would only repeat it, and cost every search its tokens.
    turns = section_turns if _repeats(summary, chunks) else [summary_turn, *section_turns]
    turn_ids = memory.add_episode(turns, session_id=session_id, source="document")
    if progress is not None:
        progress(len(chunks), len(chunks))
    return IngestReport(
        doc_id=slug,
        session_id=session_id,
        path=str(document.path),
        title=document.title,
        chunks=len(chunks),
        sections=len(document.sections),
        summary=summary_turn.text,
        seconds=round(time.perf_counter() - started, 3),
        turn_ids=tuple(turn_ids),
    )


def _summarise_sections(
    chunks: Sequence[Chunk],
    slug: str,
    document: Document,
    summarize: Summarize,
    count_tokens: CountTokens,
    progress: Progress | None,
) -> tuple[list[Turn], list[str]]:
    """Return each section's chunk turns plus summary turn, and the section summaries."""
    turns: list[Turn] = []
    summaries: list[str] = []
    done = 0
    for section in document.sections:
        own = [chunk for chunk in chunks if chunk.section is section]
        turns.extend(_chunk_turn(chunk, document) for chunk in own)
        summary = summarize_within([c.text for c in own], summarize, count_tokens=count_tokens)
        summaries.append(summary)
        if not _repeats(summary, own):
            turns.append(
                Turn(
                    text=summary or section.heading,
                    speaker="summary",
                    id=f"{slug}#{section.anchor}-summary",
                    metadata={
                        **_place(section, document),
                        "level": "section",
                        "covers": [chunk.id for chunk in own],
                    },
                )
            )
        done += len(own)
        if progress is not None:  # The last step, storing, completes the bar.
            progress(min(done, len(chunks) - 1), len(chunks))
    return turns, summaries


def _repeats(summary: str, chunks: Sequence[Chunk]) -> bool:
    """Tell whether a section summary just repeats the section's only chunk (not worth storing)."""
    return len(chunks) == 1 and summary.split() == chunks[0].text.split()


def _chunk_turn(chunk: Chunk, document: Document) -> Turn:
    assert chunk.section is not None
    return Turn(
        text=chunk.text,
        speaker="document",
        id=chunk.id,
        metadata=_place(chunk.section, document),
    )


def _place(section: Section, document: Document) -> dict[str, Any]:
    return {"path": str(document.path), "page": section.page, "section": section.heading}


_CHUNK_ID = re.compile(r"#(?P<kind>[ps])(?P<number>\d+)-(?:c(?P<chunk>\d+)|summary)$")


def chunk_place(turn_id: str) -> dict[str, int] | None:
    """Return where a chunk or section summary id points: ``{"page": 3, "chunk": 2}``.

    ``report#p3-c2`` gives page 3, chunk 2; ``notes#s2-c1`` section 2, chunk 1;
    ``report#p3-summary`` page 3. Ids that ``ingest_document`` did not make give ``None``.
    """
    match = _CHUNK_ID.search(turn_id)
    if match is None:
        return None
    place = {"page" if match["kind"] == "p" else "section": int(match["number"])}
    if match["chunk"]:
        place["chunk"] = int(match["chunk"])
    return place
