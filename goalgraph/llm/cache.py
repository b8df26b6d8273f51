"""``GenerationCache``: answer repeated model calls without generating again.

Two tiers sit in front of ``LocalChatModel`` generation:

* **Exact.** The key is the sha256 of the model identity (name and dtype), the decoding settings
  (temperature, ``max_new_tokens``, thought settings), the output schema (the JSON-schema of a
  structured reply, or the tool set and tool choice of a tool-calling turn) and the full rendered
  prompt. The stored value is the raw generated text. An in-process LRU dict answers in
  microseconds; a small SQLite table (``exact.sqlite3``) behind it survives the process.
* **Semantic** (``CacheSpec.semantic``). GPTCache (``gptcache.adapter.api.get/put`` on a private
  ``gptcache.Cache``; never its default init, which pip-installs onnxruntime and downloads a model)
  over SQLite + faiss in ``semantic/``, with offline all-MiniLM-L6-v2 embeddings of the *task
  text* only (the goal in the last human message), never of the whole prompt. A candidate counts
  only when its scope (model, decoding, schema and system prompt) is identical, its cosine
  similarity reaches ``CacheSpec.similarity``, and the literal tokens of the two tasks (numbers and
  arithmetic expressions, quoted strings, file names, URLs) are identical, in order, so "What is
  12*(3+4)?" never reuses the plan of "What is 12*(3+5)?".

Caching policy (what is safe to reuse):

* A structured-output (``json`` mode) call whose conversation is system turns plus one human turn
  -- the planner: the same goal (or a paraphrase with the same literals) under the same tools,
  model and instructions deserves the same plan. Exact and semantic tiers.
* A tool-calling turn (``tools`` mode) or any multi-turn conversation: the next action depends on
  fresh observations, so it is reused only when the *whole* prompt matches. Exact tier only.
* Plain text calls: exact tier only.
* Sampling (temperature > 0) is never cached: a cached sample would silently remove the variety
  the caller asked for.
* Streaming (``stream``/``astream``) bypasses the cache: it neither reads nor writes it.

Entries expire after ``CacheSpec.ttl_s`` (an expired entry is a miss and is removed) and at most
``CacheSpec.max_entries`` are kept per tier (least recently used go first; in the SQLite table
"recently used" means stored or last read from disk). A corrupt cache file (SQLite or faiss index)
is moved aside and rebuilt with a logged warning; a cache failure is never a model failure.
Several processes may share the exact table (SQLite locking); the faiss index is written whole
after each semantic put, so concurrent writers can lose each other's semantic entries (only a
miss later, never a wrong answer, because answers live in SQLite next to their scope).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from goalgraph.embeddings import MINILM_DIMENSION, MiniLMEmbedder, shared_minilm
from goalgraph.paths import data_dir
from goalgraph.spec import CacheSpec

__all__ = [
    "CacheHit",
    "CacheRequest",
    "CacheStats",
    "GenerationCache",
    "MiniLMEmbedder",
    "literal_tokens",
    "semantic_task",
]

log = logging.getLogger(__name__)

Embed = Callable[[str], np.ndarray]


_EXPRESSION = re.compile(r"[\d(][\d\s+\-*/^%().,=<>×÷]*")
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'|`([^`]*)`|“([^”]*)”")
_URL = re.compile(r"\bhttps?://\S+", re.IGNORECASE)
_FILE = re.compile(r"[\w.\-/~]*\w\.[A-Za-z][A-Za-z0-9]{0,7}\b")


def literal_tokens(text: str) -> list[str]:
    """Return the tokens of ``text`` that must be identical for two tasks to share an answer.

    These are URLs, file-like names (``notes.txt``), quoted strings and arithmetic runs that
    contain a digit (``12*(3+4)``, with spaces removed), in order of appearance.
    """
    tokens: list[str] = []
    rest = text
    for match in _URL.finditer(text):
        tokens.append(match.group(0).rstrip(".,;:!?)"))
    rest = _URL.sub(" ", rest)
    for match in _QUOTED.finditer(rest):
        tokens.append("q:" + next(g for g in match.groups() if g is not None))
    rest = _QUOTED.sub(" ", rest)
    for match in _FILE.finditer(rest):
        if not re.fullmatch(r"[\d.]+", match.group(0)):
            tokens.append("f:" + match.group(0))
    rest = _FILE.sub(" ", rest)
    for match in _EXPRESSION.finditer(rest):
        run = re.sub(r"\s+", "", match.group(0)).rstrip(".,")
        if any(ch.isdigit() for ch in run):
            tokens.append(run)
    return tokens


def semantic_task(messages: Sequence[Any], mode: str) -> str | None:
    """Return the task text a semantic lookup may embed, or ``None`` if only exact reuse is safe.

    Only a structured-output call (``mode == "json"``) over system turns plus exactly one final
    human turn qualifies; its task text is that human turn.
    """
    if mode != "json" or not messages:
        return None
    *head, last = messages
    if getattr(last, "type", None) != "human":
        return None
    if any(getattr(m, "type", None) != "system" for m in head):
        return None
    return str(last.text)


@dataclass
class CacheStats:
    """Counters of one ``GenerationCache``."""

    exact_hits: int = 0
    """Answers found by the exact key (in process or in SQLite)."""
    semantic_hits: int = 0
    """Answers found by the semantic tier."""
    misses: int = 0
    """Lookups that found nothing."""
    stores: int = 0
    """Answers stored."""
    expired: int = 0
    """Entries dropped because their TTL had passed."""


@dataclass(frozen=True)
class CacheRequest:
    """What identifies one generation call.

    Attributes:
        scope: Model identity, decoding settings and output schema (JSON-serialisable).
        system: The system text (instructions); part of the semantic scope.
        prompt: The full rendered prompt.
        task: The task text for the semantic tier, or ``None`` (exact tier only).
    """

    scope: Mapping[str, Any]
    system: str
    prompt: str
    task: str | None = None

    def exact_key(self) -> str:
        """Return the sha256 of scope and full prompt."""
        return _sha({"scope": self.scope, "prompt": self.prompt})

    def scope_key(self) -> str:
        """Return the sha256 of scope and system text (what a semantic hit must share)."""
        return _sha({"scope": self.scope, "system": self.system})


@dataclass(frozen=True)
class CacheHit:
    """A cached answer."""

    text: str
    """The raw generated text."""
    output_tokens: int
    """Tokens the original generation produced."""
    tier: Literal["exact", "semantic"]
    """Which tier answered."""


class GenerationCache:
    """Exact and semantic cache of raw generated text, keyed as the module docstring describes.

    Thread-safe; a failure inside the cache is logged and treated as a miss.

    Example:
        ```python
        cache = GenerationCache(CacheSpec(), path=tmp_path)
        request = CacheRequest(scope={...}, system="...", prompt=prompt, task="What is 6*7?")
        hit = cache.lookup(request)  # None the first time
        cache.store(request, text, output_tokens=12)
        ```
    """

    def __init__(
        self,
        spec: CacheSpec | None = None,
        *,
        path: Path | str | None = None,
        embed: Embed | None = None,
        dimension: int | None = None,
    ) -> None:
        """Open (or create) the cache files.

        Args:
            spec: Cache settings (defaults to ``CacheSpec()``).
            path: Folder of the cache files; overrides ``spec.path`` (default
                ``<data dir>/cache``).
            embed: Sentence embedding function for the semantic tier (default: MiniLM, loaded
                lazily on the first semantic lookup or store).
            dimension: Length of ``embed``'s vectors (default 384, MiniLM's).
        """
        self.spec = spec or CacheSpec()
        folder = path or self.spec.path or data_dir() / "cache"
        self.path = Path(folder).expanduser()
        self.path.mkdir(parents=True, exist_ok=True)
        self.stats = CacheStats()
        self._embed: Embed = embed or shared_minilm()
        self._dimension = dimension or getattr(self._embed, "dimension", MINILM_DIMENSION)
        self._lock = threading.RLock()
        self._memory: OrderedDict[str, tuple[str, int, float]] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self._semantic: Any = None
        self._expired_ids: list[int] = []
        self._open_exact()

    @classmethod
    def from_spec(cls, spec: CacheSpec, **kwargs: Any) -> GenerationCache | None:
        """Return a cache for ``spec``, or ``None`` when the spec opts out."""
        return cls(spec, **kwargs) if spec.enabled else None

    # -- public API ---------------------------------------------------------------------------

    def lookup(self, request: CacheRequest) -> CacheHit | None:
        """Return the cached answer to ``request`` (exact first, then semantic), or ``None``."""
        key = request.exact_key()
        now = time.time()
        with self._lock:
            hit = self._exact_get(key, now)
            if hit is not None:
                self.stats.exact_hits += 1
                return hit
            if self.spec.semantic and request.task is not None:
                hit = self._semantic_get(request, now)
                if hit is not None:
                    self.stats.semantic_hits += 1
                    return hit
            self.stats.misses += 1
            return None

    def store(self, request: CacheRequest, text: str, *, output_tokens: int = 0) -> None:
        """Store ``text`` as the answer to ``request`` in every tier it qualifies for."""
        now = time.time()
        with self._lock:
            self._exact_put(request.exact_key(), text, output_tokens, now)
            if self.spec.semantic and request.task is not None:
                self._semantic_put(request, text, output_tokens, now)
            self.stats.stores += 1

    def clear(self) -> None:
        """Drop every entry of both tiers."""
        with self._lock:
            self._memory.clear()
            self._guard(_run("DELETE FROM entries"))
            self._close_semantic()
            self._remove_semantic_files()

    def close(self) -> None:
        """Write pending state and close the files."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._close_semantic()

    # -- exact tier ---------------------------------------------------------------------------

    @property
    def _exact_file(self) -> Path:
        return self.path / "exact.sqlite3"

    def _open_exact(self) -> None:
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            log.warning(
                "generation cache %s is unreadable (%s); rebuilding it", self._exact_file, exc
            )
            _move_aside(self._exact_file)
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._exact_file, check_same_thread=False, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
                " output_tokens INTEGER NOT NULL, created REAL NOT NULL, used REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS entries_used ON entries(used)")
            db.execute("SELECT count(*) FROM entries").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _guard(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action`` on the SQLite table; rebuild the file once if it turns out corrupt."""
        assert self._db is not None
        try:
            return action(self._db)
        except sqlite3.DatabaseError as exc:
            log.warning("generation cache %s failed (%s); rebuilding it", self._exact_file, exc)
            self._db.close()
            _move_aside(self._exact_file)
            self._memory.clear()
            self._db = self._connect()
            return None

    def _exact_get(self, key: str, now: float) -> CacheHit | None:
        ttl = self.spec.ttl_s
        entry = self._memory.get(key)
        if entry is not None:
            text, tokens, created = entry
            if now - created <= ttl:
                self._memory.move_to_end(key)
                return CacheHit(text, tokens, "exact")
            del self._memory[key]
        row = self._guard(
            lambda db: db.execute(
                "SELECT text, output_tokens, created FROM entries WHERE key = ?", (key,)
            ).fetchone()
        )
        if row is None:
            return None
        text, tokens, created = row
        if now - created > ttl:
            self.stats.expired += 1
            self._guard(_run("DELETE FROM entries WHERE key = ?", key))
            return None
        self._guard(_run("UPDATE entries SET used = ? WHERE key = ?", now, key))
        self._remember(key, text, int(tokens), created)
        return CacheHit(text, int(tokens), "exact")

    def _exact_put(self, key: str, text: str, tokens: int, now: float) -> None:
        self._remember(key, text, tokens, now)
        limit = self.spec.max_entries

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                (key, text, tokens, now, now),
            )
            db.execute("DELETE FROM entries WHERE created < ?", (now - self.spec.ttl_s,))
            db.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries"
                " ORDER BY used DESC LIMIT -1 OFFSET ?)",
                (limit,),
            )
            db.commit()

        self._guard(write)

    def _remember(self, key: str, text: str, tokens: int, created: float) -> None:
        self._memory[key] = (text, tokens, created)
        self._memory.move_to_end(key)
        while len(self._memory) > self.spec.max_entries:
            self._memory.popitem(last=False)

    # -- semantic tier (GPTCache) -------------------------------------------------------------

    @property
    def _semantic_dir(self) -> Path:
        return self.path / "semantic"

    def _semantic_files(self) -> list[Path]:
        return [self._semantic_dir / "gptcache.sqlite3", self._semantic_dir / "faiss.index"]

    def _remove_semantic_files(self) -> None:
        for file in self._semantic_files():
            file.unlink(missing_ok=True)

    def _gptcache(self) -> Any:
        if self._semantic is None:
            try:
                self._semantic = self._init_gptcache()
            except Exception as exc:
                log.warning(
                    "semantic cache in %s is unreadable (%s); rebuilding it",
                    self._semantic_dir,
                    exc,
                )
                for file in self._semantic_files():
                    _move_aside(file)
                self._semantic = self._init_gptcache()
        return self._semantic

    def _init_gptcache(self) -> Any:
        # Import faiss and sqlalchemy first: GPTCache pip-installs a missing optional
        # dependency at import time, and we would rather fail here than download.
        import faiss  # noqa: F401
        import sqlalchemy  # noqa: F401

        with warnings.catch_warnings():
            # GPTCache's SQL storage still calls sqlalchemy's pre-2.0 declarative_base().
            warnings.simplefilter("ignore", DeprecationWarning)
            from gptcache import Cache, Config
            from gptcache.manager import CacheBase, VectorBase, get_data_manager
            from gptcache.processor.post import first

            self._semantic_dir.mkdir(parents=True, exist_ok=True)
            sql_file, index_file = self._semantic_files()
            limit = self.spec.max_entries
            manager = get_data_manager(
                CacheBase("sqlite", sql_url=f"sqlite:///{sql_file}", table_name="goalgraph"),
                VectorBase("faiss", dimension=self._dimension, index_path=str(index_file), top_k=8),
                max_size=limit,
                clean_size=max(1, limit // 10),
                eviction="LRU",
            )
        manager.s.count(is_all=True)  # Touch the table: a corrupt file fails here, not later.
        cache = Cache()
        cache.init(
            pre_embedding_func=_pre_embedding,
            embedding_func=self._embed_for_gptcache,
            data_manager=manager,
            similarity_evaluation=_ScopedCosine(self),
            post_process_messages_func=first,
            config=Config(similarity_threshold=self.spec.similarity, disable_report=True),
        )
        return cache

    def _close_semantic(self) -> None:
        if self._semantic is not None:
            try:
                self._semantic.data_manager.close()
            except Exception as exc:  # Closing must not raise; the files are rebuilt if bad.
                log.warning("closing the semantic cache failed: %s", exc)
            # GPTCache closes (and so rewrites the faiss index of) every initialised Cache at
            # exit; a closed one must not overwrite the files of its successor.
            self._semantic.data_manager = _Closed()
            self._semantic = None

    def _embed_for_gptcache(self, text: str, **_: Any) -> np.ndarray:
        return np.asarray(self._embed(text), dtype="float32")

    def _semantic_question(self, request: CacheRequest, now: float) -> str:
        assert request.task is not None
        return json.dumps(
            {
                "scope": request.scope_key(),
                "literals": literal_tokens(request.task),
                "created": now,
                "task": request.task,
            }
        )

    def _semantic_get(self, request: CacheRequest, now: float) -> CacheHit | None:
        from gptcache.adapter.api import get

        try:
            cache = self._gptcache()
            self._expired_ids = []
            answer = get(self._semantic_question(request, now), cache_obj=cache)
            if self._expired_ids:
                self.stats.expired += len(self._expired_ids)
                manager = cache.data_manager
                manager.s.mark_deleted(self._expired_ids)
                manager.eviction_manager.delete()
                manager.flush()
        except Exception as exc:
            log.warning("semantic cache lookup failed (%s); treating it as a miss", exc)
            self._close_semantic()
            return None
        if answer is None:
            return None
        value = json.loads(answer)
        return CacheHit(value["text"], int(value["output_tokens"]), "semantic")

    def _semantic_put(self, request: CacheRequest, text: str, tokens: int, now: float) -> None:
        from gptcache.adapter.api import put

        try:
            cache = self._gptcache()
            answer = json.dumps({"text": text, "output_tokens": tokens})
            put(self._semantic_question(request, now), answer, cache_obj=cache)
            cache.flush()
        except Exception as exc:
            log.warning("semantic cache store failed (%s); entry not cached", exc)
            self._close_semantic()


class _Closed:
    """Stands in for a closed GPTCache data manager: closing or flushing it again does nothing."""

    def close(self) -> None:
        """Do nothing."""

    def flush(self) -> None:
        """Do nothing."""


def _pre_embedding(data: Mapping[str, Any], **_: Any) -> tuple[str, str]:
    """Store the whole question record; embed only the task text."""
    question = str(data["prompt"])
    return question, str(json.loads(question)["task"])


class _ScopedCosine:
    """Cosine similarity of task embeddings, 0 unless scope and literals match and it is fresh.

    It implements GPTCache's ``SimilarityEvaluation`` interface (``evaluation`` and ``range``)
    without subclassing it, so importing this module does not import GPTCache."""

    def __init__(self, owner: GenerationCache) -> None:
        self._owner = owner

    def evaluation(self, src_dict: dict[str, Any], cache_dict: dict[str, Any], **_: Any) -> float:
        query = json.loads(str(src_dict["question"]))
        stored = cache_dict["question"]
        stored = json.loads(str(getattr(stored, "content", stored)))
        if query["scope"] != stored["scope"] or query["literals"] != stored["literals"]:
            return 0.0
        if query["created"] - stored["created"] > self._owner.spec.ttl_s:
            self._owner._expired_ids.append(int(cache_dict["search_result"][1]))
            return 0.0
        a = np.asarray(src_dict["embedding"], dtype="float32").ravel()
        b = cache_dict.get("embedding")
        if b is None:  # Fall back on faiss' squared L2 distance between unit vectors.
            return float(max(0.0, 1.0 - float(cache_dict["search_result"][0]) / 2.0))
        b = np.asarray(b, dtype="float32").ravel()
        denominator = float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0
        return float(max(0.0, float(np.dot(a, b)) / denominator))

    def range(self) -> tuple[float, float]:
        return 0.0, 1.0


def _run(sql: str, *params: Any) -> Callable[[sqlite3.Connection], None]:
    """Return an action that executes one statement and commits."""

    def action(db: sqlite3.Connection) -> None:
        db.execute(sql, params)
        db.commit()

    return action


def _sha(value: Any) -> str:
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _move_aside(file: Path) -> None:
    """Rename a corrupt file to ``<name>.corrupt`` (replacing an older one) and its journals."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = file.with_name(file.name + suffix)
        if part.exists():
            part.replace(part.with_name(part.name + ".corrupt"))
