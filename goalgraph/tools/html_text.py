"""Readable text out of an HTML page, in time linear in its size, for the ``http_get`` tool.

The page is parsed by libxml2 (through ``lxml``), whose tokenizer is linear; the standard
library's ``html.parser`` rescans the rest of the input at every ``<`` that does not open a
complete tag, so 200 KB of ``<a<a<a...`` took it about 30 s. Nesting deeper than libxml2's limit
(2,048 elements) ends the parse there, with a note. Then the tree is walked once; the walk stops
at a deadline, with a note, so the conversion cannot outlast the fetch's time limit.
"""

from __future__ import annotations

import math
import re
import time

from lxml import etree

__all__ = ["DEPTH_NOTE", "TIME_NOTE", "html_to_text"]

DEPTH_NOTE = "[the page nests its elements too deeply; the text after that point is not shown]"
"""Appended when the parse stopped at libxml2's nesting limit."""
TIME_NOTE = "[converting the page to text ran out of time; the text after this point is missing]"
"""Appended when the walk stopped at its deadline."""

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object"})
# fmt: off
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "thead", "tfoot", "tr", "ul",
})
# fmt: on
_WHITESPACE = re.compile(r"\s+")
_CLOCK_EVERY = 1024
"""Elements walked between two looks at the clock."""


def html_to_text(html: str, *, deadline: float | None = None) -> tuple[str, str | None]:
    """Return the readable text of an HTML page and its title.

    Scripts, styles and other non-text elements are dropped, block elements start new lines,
    list items start with ``- ``, and whitespace is collapsed (``<pre>`` keeps its line breaks).

    Args:
        html: The page's markup.
        deadline: A ``time.monotonic()`` value; the walk stops there and the text ends with
            ``TIME_NOTE``. ``None``: no limit.

    Returns:
        ``(text, title)``; ``title`` is the first ``<title>``'s text, ``None`` when there is none.
    """
    # Bytes with an explicit encoding: a str with an XML encoding declaration is refused, and a
    # <meta charset> must not re-decode text the fetch already decoded.
    parser = etree.HTMLParser(
        encoding="utf-8", huge_tree=True, remove_comments=True, remove_pis=True, no_network=True
    )
    root = etree.fromstring(html.encode("utf-8", errors="replace"), parser)
    if root is None:  # empty, or only comments
        return "", None
    walk = _Walk(deadline)
    walk.run(root)
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        walk.parts.append("\n" + DEPTH_NOTE)
    return walk.text(), walk.title


class _Walk:
    """One pass over the parsed tree, collecting text parts and the first title."""

    def __init__(self, deadline: float | None) -> None:
        self.parts: list[str] = []
        self.title: str | None = None
        self._have_title = False
        self._pre_depth = 0
        self._deadline = math.inf if deadline is None else deadline

    def run(self, root: etree._Element) -> None:
        walker = etree.iterwalk(root, events=("start", "end"))
        for count, (event, element) in enumerate(walker):
            if count % _CLOCK_EVERY == 0 and time.monotonic() > self._deadline:
                self.parts.append("\n" + TIME_NOTE)
                return
            tag = element.tag if isinstance(element.tag, str) else ""
            if event == "start":
                if tag in _SKIP or tag == "title":
                    if tag == "title" and not self._have_title:  # only the first title counts
                        self._have_title = True
                        self.title = " ".join(element.xpath("string()").split()) or None
                    walker.skip_subtree()  # its end event still comes, with its tail
                    continue
                self._open(tag)
                self._add(element.text)
            else:
                if tag not in _SKIP:
                    self._close(tag)
                if element is not root:
                    self._add(element.tail)

    def _open(self, tag: str) -> None:
        if tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")
            self._pre_depth += tag == "pre"
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def _close(self, tag: str) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def _add(self, data: str | None) -> None:
        if data:
            # Line breaks in HTML source are spaces, except inside <pre>.
            self.parts.append(data if self._pre_depth else _WHITESPACE.sub(" ", data))

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line and line != "-")
