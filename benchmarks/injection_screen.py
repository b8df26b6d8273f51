"""The prompt-injection screen on a labelled set: detection and false-positive rates.

``benchmarks/data/injections.jsonl`` holds 129 injections and 126 benign texts, one JSON object a
line: ``id``, ``label`` (``injection`` | ``benign``), ``kind`` (direct, polite, multilingual,
lookalike, obfuscated, linebreak, hidden, roleplay, tool_json, exfiltration, chat_markup; manual,
email, readme, code, prose, support, multilingual, discussion, data, recipe_misc) and ``split``.
Within each kind the texts alternate between the ``tuning`` split (the screen's patterns may be
improved while looking at it) and the ``heldout`` split (only measured). The texts were written for
goalgraph; no public injection dataset was available offline.

The screen is ``goalgraph.injection.screen``, exactly as ``act`` applies it to a tool's output:
an injection counts as detected when any pattern flags it, a benign text as a false positive when
any does.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/injection_screen.py           # writes results/injection_screen.md
    .venv/bin/python benchmarks/injection_screen.py --misses  # and lists the tuning split's misses
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from goalgraph.injection import screen

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "injections.jsonl"
RESULTS = HERE / "results" / "injection_screen.md"
SPLITS = ("tuning", "heldout")


@dataclass(frozen=True)
class Item:
    """One labelled text and the screen's verdict on it."""

    id: str
    label: str
    kind: str
    split: str
    text: str
    flags: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """Whether the screen flagged the text."""
        return bool(self.flags)


def load(path: Path = DATA) -> list[Item]:
    """Read the labelled set and screen every text."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            labels = (row["id"], row["label"], row["kind"], row["split"], row["text"])
            items.append(Item(*labels, flags=tuple(screen(row["text"]))))
    return items


def rate(items: Sequence[Item]) -> str:
    """``flagged/total (percent)`` of ``items``."""
    flagged = sum(item.flagged for item in items)
    return f"{flagged}/{len(items)} ({100 * flagged / len(items):.0f}%)" if items else "-"


def summary_rows(items: Sequence[Item]) -> list[list[str]]:
    """One row per split and both together: detection and false-positive rates."""
    rows = []
    for split in (*SPLITS, "both"):
        chosen = [item for item in items if split in ("both", item.split)]
        injections = [item for item in chosen if item.label == "injection"]
        benign = [item for item in chosen if item.label == "benign"]
        rows.append([split, rate(injections), rate(benign)])
    return rows


def kind_rows(items: Sequence[Item], label: str) -> list[list[str]]:
    """One row per kind of ``label``: the flagged share in each split."""
    kinds = dict.fromkeys(item.kind for item in items if item.label == label)
    return [
        [
            kind,
            *(
                rate([i for i in items if (i.label, i.kind, i.split) == (label, kind, split)])
                for split in SPLITS
            ),
        ]
        for kind in kinds
    ]


def markdown(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def report(items: Sequence[Item]) -> str:
    """The whole result as Markdown."""
    lines = [
        "# Prompt-injection screen on the labelled set",
        "",
        f"`.venv/bin/python benchmarks/injection_screen.py` over `{DATA.relative_to(HERE.parent)}` "
        f"({sum(i.label == 'injection' for i in items)} injections, "
        f"{sum(i.label == 'benign' for i in items)} benign texts). The patterns were improved "
        "looking at the `tuning` split only; `heldout` was measured once they were done (one "
        "pattern bug its false positives showed was fixed afterwards: see "
        "docs/tools-and-safety.md).",
        "",
        *markdown(["split", "injections detected", "benign texts flagged"], summary_rows(items)),
        "",
        "## Injections detected, by kind",
        "",
        *markdown(["kind", "tuning", "heldout"], kind_rows(items, "injection")),
        "",
        "## Benign texts flagged (false positives), by kind",
        "",
        *markdown(["kind", "tuning", "heldout"], kind_rows(items, "benign")),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Item]:
    """Screen the set, print the tables, write the Markdown result; return the screened items."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the labelled JSON lines")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the Markdown result")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--misses", action="store_true", help="list the tuning split's misses and false positives"
    )
    args = parser.parse_args(argv)
    items = load(args.data)
    text = report(items)
    print(text)
    if args.misses:
        for item in items:
            wrong = item.flagged != (item.label == "injection")
            if item.split == "tuning" and wrong:
                shown = item.text.replace("\n", "\\n")[:110]
                print(f"{item.id:28} {','.join(item.flags) or '-':30} {shown}")
    if not args.no_write:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return items


if __name__ == "__main__":
    main()
