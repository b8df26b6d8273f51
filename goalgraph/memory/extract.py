"""Fact and entity extraction from turns: fast deterministic rules, or the model under a grammar.

Both extractors return ``ExtractedFact``s that name the turn they came from, so every fact in the
graph keeps its provenance. The rules cover the relations a personal assistant hears most (where
someone lives and works, their job, age, name, family, pets, likes and favourites) in first and
third person, with negations ("I no longer live in Paris") and dates ("on 7 May 2023",
"yesterday"). They run in microseconds, so ingest works even when the model is weak or absent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from dateutil import parser as date_parser

__all__ = [
    "ExtractedFact",
    "Extractor",
    "ModelExtractor",
    "RuleExtractor",
    "TurnText",
    "find_entities",
    "normalise_name",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnText:
    """What an extractor reads: one turn's text, speaker, time and id."""

    id: str
    speaker: str
    text: str
    at: datetime


@dataclass(frozen=True)
class ExtractedFact:
    """A relation found in one turn, before it is linked into the graph."""

    subject: str
    predicate: str
    object: str
    text: str
    """The fact as a sentence."""
    source: str
    """The id of the turn it came from."""
    valid_at: datetime | None = None
    exclusive: bool = False
    """Whether the subject has only one value of this predicate at a time (a newer one supersedes
    the old: someone lives in one city)."""
    negated: bool = False
    """Whether the turn says the relation stopped holding ("I no longer work at X")."""


class Extractor(Protocol):
    """Turns text into facts."""

    def extract(self, turns: Iterable[TurnText]) -> list[ExtractedFact]:
        """Return the facts stated in ``turns``."""
        ...


_NOT_NAMES_TEXT = """
    a an the i i'm i've i'll i'd it it's its we we're you you're he she they this that these
    those there here what when where who why how yes no oh ok okay hey hi hello thanks thank
    wow yeah yep nope sure well so and but or if then my your our their his her me us them am
    is are was were be been do does did have has had can could will would should may might must
    not just also really very great good nice cool awesome amazing love like sounds congrats
    congratulations sorry please let let's glad happy absolutely definitely totally haha lol by
    the way btw anyway monday tuesday wednesday thursday friday saturday sunday january
    february march april may june july august september october november december today
    tomorrow yesterday mom dad
"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_NAME = r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*){0,3}"
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|de\s+)?[A-Z][\w'’-]*)*")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_OBJECT = r"(?P<obj>[^,.;:!?()\"]{2,60}?)"
_OBJECT_END = (
    r"(?i:(?=\s+(?:and|but|because|since|so|now|yesterday|today|last|next|this|that|with|for|"
    r"after|before|when|while|where|which|who|until|as|in\s+(?:\d+|january|february|march|april|"
    r"may|june|july|august|september|october|november|december))\b|[,.;:!?()\"]|$))"
)


def normalise_name(name: str) -> str:
    """Return the form names are matched by: lower case, single spaces, no possessive."""
    name = re.sub(r"['’]s\b", "", name.strip().lower())
    return re.sub(r"\s+", " ", name)


def find_entities(text: str, *, speaker: str | None = None) -> list[str]:
    """Return the proper names in ``text`` (capitalised runs that are not common words)."""
    found: dict[str, str] = {}
    if speaker and speaker[:1].isupper():
        found[normalise_name(speaker)] = speaker
    for match in _CAPITALISED.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower().strip("'’") in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower().strip("'’") in _NOT_NAMES:
            words = words[:-1]
        if not words:
            continue
        name = re.sub(r"['’]s$", "", " ".join(words))
        if len(name) > 1:
            found.setdefault(normalise_name(name), name)
    return list(found.values())


@dataclass(frozen=True)
class _Rule:
    predicate: str
    pattern: re.Pattern[str]
    exclusive: bool = False
    negated: bool = False
    sentence: str = "{subject} {verb} {object}"
    verb: str = ""


def _rule(predicate: str, body: str, verb: str, **options: Any) -> _Rule:
    # Subjects are case-sensitive (names are capitalised); verbs and objects are not.
    subject = r"(?P<subj>\bI\b|\b[Ww]e\b|" + _NAME + r")(?:['’](?=m\b|re\b|s\b))?"
    pattern = re.compile(subject + r"\s*(?i:" + body + r")\s+" + _OBJECT + _OBJECT_END)
    return _Rule(predicate=predicate, pattern=pattern, verb=verb, **options)


_ADVERBS = r"(?:(?:just|recently|finally|now|currently|still|also|actually)\s+)?"
_RULES: tuple[_Rule, ...] = (
    _rule(
        "lives_in",
        r"(?:no longer|don't|do not|doesn't|does not|didn't)\s+live\s+in",
        "no longer lives in",
        exclusive=True,
        negated=True,
    ),
    _rule(
        "works_at",
        r"(?:(?:no longer|don't|do not|doesn't|does not)\s+work\s+(?:at|for)|"
        r"(?:quit|left|lost)\s+(?:my|his|her|their)\s+job\s+(?:at|with|as\s+an?))",
        "no longer works at",
        exclusive=True,
        negated=True,
    ),
    _rule(
        "lives_in",
        _ADVERBS + r"(?:(?:'m|am|is|are)\s+)?(?:live|lives|living|moved|moving|relocated)\s+"
        r"(?:back\s+)?(?:in|to)",
        "lives in",
        exclusive=True,
    ),
    _rule(
        "works_at",
        _ADVERBS + r"(?:(?:'m|am|is|are)\s+)?(?:work|works|working|started\s+working|got\s+a\s+job|"
        r"joined|took\s+a\s+job)\s+(?:at|for|with)",
        "works at",
        exclusive=True,
    ),
    _rule("job", _ADVERBS + r"(?:work|works|working)\s+as\s+an?", "works as", exclusive=True),
    _rule(
        "likes",
        _ADVERBS + r"(?:(?:'m|am|is|are)\s+)?(?:love|loves|like|likes|enjoy|enjoys|adore|adores|"
        r"passionate\s+about|into|fond\s+of)",
        "likes",
    ),
    _rule(
        "has_pet",
        r"(?:have|has|got|adopted)\s+(?:a|an|two|three|\d+)\s+(?:\w+\s+)?"
        r"(?:dog|dogs|cat|cats|puppy|kitten|pet|pets|bird|rabbit|hamster|turtle)\s+"
        r"(?:named|called)",
        "has a pet named",
    ),
)
_MY_NAME = re.compile(r"(?i:\bmy name is|\bcall me)\s+(?P<obj>" + _NAME + ")")
_AGE = re.compile(
    r"(?P<subj>\bI\b|" + _NAME + r")(?:['’]m|\s+am|\s+is|\s+just\s+turned|\s+turned)\s+"
    r"(?P<obj>\d{1,3})(?:\s+years?\s+old|\b)",
)
_FAVOURITE = re.compile(
    r"(?P<subj>\b[Mm]y\b|" + _NAME + r"['’]s)\s+(?i:fav(?:ou?rite|e))\s+(?P<what>\w+(?:\s+\w+)?)"
    r"\s+(?i:is|are|was)\s+" + _OBJECT + _OBJECT_END,
)
_RELATIVE = re.compile(
    r"(?P<subj>\b[Mm]y\b|" + _NAME + r"['’]s)\s+(?P<what>wife|husband|partner|boyfriend|girlfriend|"
    r"son|daughter|brother|sister|mother|father|mom|dad|best friend)\s*,?\s+(?:is\s+)?"
    r"(?:named\s+|called\s+)?(?P<obj>[A-Z][\w'-]+)",
)
_SPOUSES = frozenset({"wife", "husband", "partner", "boyfriend", "girlfriend"})
_RELATIVE_DATES = {
    "yesterday": timedelta(days=1),
    "last night": timedelta(days=1),
    "last week": timedelta(days=7),
    "last weekend": timedelta(days=7),
    "last month": timedelta(days=30),
    "last year": timedelta(days=365),
    "a few days ago": timedelta(days=3),
    "today": timedelta(0),
    "this morning": timedelta(0),
}
_EXPLICIT_DATE = re.compile(
    r"\b(?:\d{1,2}\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+\d{4}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+\d{4}|"
    r"\d{4}-\d{2}-\d{2})\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:in|since|back in)\s+((?:19|20)\d{2})\b", re.IGNORECASE)


def sentence_date(sentence: str, said_at: datetime) -> datetime | None:
    """Return the date a sentence places its event at, resolved against when it was said."""
    match = _EXPLICIT_DATE.search(sentence)
    if match:
        try:
            return date_parser.parse(match.group(0), default=said_at.replace(day=1))
        except (ValueError, OverflowError):
            return None
    if year := _YEAR.search(sentence):
        return said_at.replace(year=int(year.group(1)), month=1, day=1)
    lowered = sentence.lower()
    for phrase, delta in _RELATIVE_DATES.items():
        if re.search(r"\b" + phrase + r"\b", lowered):
            return said_at - delta
    return None


class RuleExtractor:
    """Deterministic extraction by patterns: fast, predictable, and never invents a fact."""

    def extract(self, turns: Iterable[TurnText]) -> list[ExtractedFact]:
        """Return the facts stated in ``turns``."""
        facts: list[ExtractedFact] = []
        for turn in turns:
            named = _MY_NAME.search(turn.text)
            if named:
                # "My name is Ada": the name comes first, so that graph memory makes it an
                # alias of the speaker before the turn's other facts refer to Ada.
                name = named.group("obj")
                facts.append(
                    ExtractedFact(
                        subject=turn.speaker,
                        predicate="name",
                        object=name,
                        text=f"{turn.speaker} is called {name}",
                        source=turn.id,
                        valid_at=turn.at,
                        exclusive=True,
                    )
                )
                turn = TurnText(turn.id, name, turn.text, turn.at)
            for sentence in _SENTENCE.findall(turn.text):
                facts.extend(self._from_sentence(sentence.strip(), turn))
        return facts

    def _from_sentence(self, sentence: str, turn: TurnText) -> list[ExtractedFact]:
        when = sentence_date(sentence, turn.at) or turn.at
        found: list[ExtractedFact] = []

        def add(subject: str, predicate: str, obj: str, text: str, **options: Any) -> None:
            subject, obj = _resolve(subject, turn.speaker), _clean_object(obj)
            if subject and obj:
                found.append(
                    ExtractedFact(
                        subject=subject,
                        predicate=predicate,
                        object=obj,
                        text=text.format(subject=subject, object=obj),
                        source=turn.id,
                        valid_at=when,
                        **options,
                    )
                )

        taken: set[str] = set()
        for rule in _RULES:
            for match in rule.pattern.finditer(sentence):
                if rule.predicate in taken:
                    continue  # a negation already matched this predicate in this sentence
                taken.add(rule.predicate)
                add(
                    match.group("subj"),
                    rule.predicate,
                    match.group("obj"),
                    "{subject} " + rule.verb + " {object}",
                    exclusive=rule.exclusive,
                    negated=rule.negated,
                )
        for match in _AGE.finditer(sentence):
            add(match.group("subj"), "age", match.group("obj"), "{subject} is {object} years old",
                exclusive=True)  # fmt: skip
        for match in _FAVOURITE.finditer(sentence):
            what = match.group("what").lower()
            add(
                match.group("subj"),
                "favourite_" + re.sub(r"\W+", "_", what),
                match.group("obj"),
                "{subject}'s favourite " + what + " is {object}",
                exclusive=True,
            )
        for match in _RELATIVE.finditer(sentence):
            what = match.group("what").lower()
            add(
                match.group("subj"),
                "has_" + what.replace(" ", "_"),
                match.group("obj"),
                "{subject}'s " + what + " is {object}",
                exclusive=what in _SPOUSES,
            )
        return found


def _resolve(subject: str, speaker: str) -> str:
    """Resolve first-person subjects to the speaker; strip possessives."""
    lowered = subject.strip().lower()
    if lowered in {"i", "my", "me", "we"}:
        return speaker
    return re.sub(r"['’]s$", "", subject.strip())


_PRONOUNS = frozenset({"it", "that", "this", "them", "him", "her", "you", "one", "those", "these"})


def _clean_object(obj: str) -> str:
    """Drop leading articles; reject pronouns, which name nothing on their own."""
    words = obj.strip().split()
    while words and words[0].lower() in {"a", "an", "the", "my", "our", "some"}:
        words = words[1:]
    cleaned = " ".join(words[:8]).strip(" '\"")
    return "" if cleaned.lower() in _PRONOUNS else cleaned


FACT_SCHEMA: dict[str, Any] = {
    "title": "Facts",
    "description": "Facts the message states about people, places, organisations and things.",
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "subject": {"type": "string", "description": "who or what the fact is about"},
                    "predicate": {"type": "string", "description": "relation, e.g. lives_in"},
                    "object": {"type": "string", "description": "the other entity or value"},
                    "exclusive": {"type": "boolean", "description": "only one value at a time"},
                    "negated": {"type": "boolean", "description": "the relation stopped holding"},
                },
                "required": ["subject", "predicate", "object", "exclusive", "negated"],
            },
        }
    },
    "required": ["facts"],
}

_EXTRACT_PROMPT = (
    "Extract facts from the message as JSON. Use the speaker's name instead of I or my. "
    "Only state what the message says.\n\nSpeaker: {speaker}\nMessage: {text}"
)


class ModelExtractor:
    """Extraction by a chat model decoding under ``FACT_SCHEMA``'s grammar.

    The grammar guarantees the JSON's shape, not its truth: a fact is kept only when its subject
    is the speaker or named in the turn and its object's words appear in the turn. When the model
    fails or keeps nothing, the turn goes to ``fallback`` (the rules by default).
    """

    def __init__(self, chat_model: Any, *, fallback: Extractor | None = None) -> None:
        self._structured = chat_model.with_structured_output(FACT_SCHEMA)
        self._fallback = fallback or RuleExtractor()

    def extract(self, turns: Iterable[TurnText]) -> list[ExtractedFact]:
        """Return the facts stated in ``turns``, one model call per turn."""
        facts: list[ExtractedFact] = []
        for turn in turns:
            kept = self._from_model(turn)
            facts.extend(kept if kept else self._fallback.extract([turn]))
        return facts

    def _from_model(self, turn: TurnText) -> list[ExtractedFact]:
        try:
            output = self._structured.invoke(
                _EXTRACT_PROMPT.format(speaker=turn.speaker, text=turn.text)
            )
        except Exception as exc:  # a model failure degrades to the rules, never to a crash
            log.warning("model extraction failed on turn %s (%s); using the rules", turn.id, exc)
            return []
        items = output.get("facts") if isinstance(output, dict) else None
        kept: list[ExtractedFact] = []
        for item in items or []:
            fact = _grounded(item, turn)
            if fact is not None:
                kept.append(fact)
        return kept


def _grounded(item: Any, turn: TurnText) -> ExtractedFact | None:
    """Return the model's fact if the turn supports it, else ``None``."""
    if not isinstance(item, dict):
        return None
    subject = _resolve(str(item.get("subject", "")), turn.speaker)
    obj = _clean_object(str(item.get("object", "")))
    predicate = re.sub(r"[^a-z0-9]+", "_", str(item.get("predicate", "")).lower()).strip("_")
    text = turn.text.lower()
    named = normalise_name(subject) == normalise_name(turn.speaker) or subject.lower() in text
    obj_words = [w for w in re.findall(r"\w+", obj.lower()) if len(w) > 2]
    if not (subject and obj and predicate and named and obj_words):
        return None
    if not all(word in text for word in obj_words):
        return None
    return ExtractedFact(
        subject=subject,
        predicate=predicate[:40],
        object=obj,
        text=f"{subject} {predicate.replace('_', ' ')} {obj}",
        source=turn.id,
        valid_at=sentence_date(turn.text, turn.at) or turn.at,
        exclusive=bool(item.get("exclusive")),
        negated=bool(item.get("negated")),
    )
