"""Text as the injection screen reads it: disguises undone, before any pattern is applied.

An attacker keeps an instruction readable to a model while hiding it from patterns: look-alike
letters from other scripts (Cyrillic ``о`` in ``Ignоre``), fullwidth or mathematical letters,
invisible characters inside words (soft hyphens, zero-width spaces), Unicode tag characters that
spell ASCII invisibly, letters spaced or dotted apart (``I g n o r e``), and line breaks inside a
phrase. ``screen_forms`` undoes these and returns two forms of the text: one that keeps its lines
(for patterns about line structure, such as fake chat turns) and one with all whitespace folded
into single spaces (for phrases).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold_confusables", "screen_forms"]

# Letters of other scripts that render like Latin ones (a subset of Unicode's confusables.txt:
# the Cyrillic and Greek letters a Latin word can be spelled with), and the small capitals.
_LOOKALIKES = {
    **dict(zip("аеорсухіјѕԁһӏг", "aeopcyxijsdhlr", strict=True)),
    **dict(zip("АВЕКМНОРСТХІЈЅ", "ABEKMHOPCTXIJS", strict=True)),
    **dict(zip("αοιρτκυνχ", "aoiptkuvx", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
}
_SMALL_CAPS = dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdefghijklmnoprstuvwyz", strict=True))
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_TAGS = re.compile(r"[\U000e0020-\U000e007e]+")
_WORD = re.compile(r"\w+")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# Four or more single letters with one space, dot or hyphen between them: "I g n o r e".
_SPACED_LETTERS = re.compile(r"(?<![\w.-])(?:[A-Za-z][ .-]){3,}[A-Za-z](?![\w-])")
_HYPHEN_BREAK = re.compile(r"(\w)-[ \t]*\r?\n\s*(\w)")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_ANY_SPACE = re.compile(r"\s+")


def fold_confusables(text: str) -> str:
    """Spell look-alike letters as Latin ones, in words that mix them with Latin letters.

    A word entirely in Cyrillic or Greek is left alone (it is Russian or Greek, not a
    disguise); small capitals are always folded.
    """

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        if _ASCII_LETTER.search(word) and any(ch in _LOOKALIKES for ch in word):
            word = "".join(_LOOKALIKES.get(ch, ch) for ch in word)
        return "".join(_SMALL_CAPS.get(ch, ch) for ch in word)

    return _WORD.sub(fold, text)


def _untag(tags: str) -> str:
    return "".join(chr(ord(ch) - 0xE0000) for ch in tags)


def screen_forms(text: str) -> tuple[str, str]:
    """Return ``(lines, flat)``: the text with its disguises undone, keeping its lines, and the
    same with every run of whitespace (line breaks included) folded into one space."""
    text = _TAGS.sub(lambda match: f" {_untag(match.group(0))} ", text)
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = fold_confusables(text)
    text = _SPACED_LETTERS.sub(lambda match: re.sub(r"[ .-]", "", match.group(0)), text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = _HORIZONTAL_SPACE.sub(" ", text)
    return lines, _ANY_SPACE.sub(" ", text).strip()
