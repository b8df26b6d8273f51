"""What argument grounding keeps and stops on BFCL, measured outside the evaluation sample.

What is measured
----------------
Argument grounding (``goalgraph.policies.grounding``) turns a call into no call when a required,
free-form value appears nowhere in the request. Two measurements, neither on the items
``benchmarks/bfcl.py`` scores:

* ``accepted answers`` (no model, every item): the share of BFCL's accepted calls for
  simple_python and multiple that grounding lets through. A correct call that fails is lost.
* ``model calls`` (``--model-items`` per category from the tuning split, the items outside the
  evaluation sample): the bundled model answers in constrained mode without gate or grounding;
  then, per category, how many of its calls grounding stops, split by whether BFCL scores the
  call correct. On irrelevance every call is wrong, and each one stopped is an item won.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/bfcl_grounding.py             # ~10 min, 40 items a category
    .venv/bin/python benchmarks/bfcl_grounding.py --no-model  # ~1 s: accepted answers only
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from _common import stderr_progress, text_table
from bfcl_gate import RELEVANT, splits

from goalgraph.eval.bfcl import DEFAULT_DATA, DEFAULT_LIMIT, BfclOptions, judge, load_chat
from goalgraph.eval.bfcl_data import BfclItem, load_items
from goalgraph.eval.bfcl_modes import run_constrained
from goalgraph.policies.grounding import ungrounded_arguments


def accepted_grounded(item: BfclItem) -> list[bool]:
    """For each accepted call of ``item``, whether grounding lets its first accepted values pass.

    An argument BFCL lets the call leave out (``""`` among its accepted values) is left out.
    """
    functions = _parameters(item)
    verdicts = []
    for call in item.accepted or []:
        ((name, accepted),) = call.items()
        arguments = {k: values[0] for k, values in accepted.items() if values and "" not in values}
        verdicts.append(not ungrounded_arguments(arguments, functions[name], item.question))
    return verdicts


def model_calls(chat: Any, item: BfclItem, options: BfclOptions) -> dict[str, Any]:
    """Answer ``item`` in constrained mode and say whether grounding would stop the call."""
    attempt = run_constrained(
        chat, item, max_new_tokens=options.max_new_tokens, settings=options.constrained
    )
    functions = _parameters(item)
    invented = [
        name
        for call in attempt.calls or []
        for function, arguments in call.items()
        for name in ungrounded_arguments(arguments, functions.get(function, {}), item.question)
    ]
    return {
        "called": bool(attempt.calls),
        "correct": judge(item, attempt).ok,
        "stopped": bool(invented),
    }


def _parameters(item: BfclItem) -> dict[str, Any]:
    """Each offered function's parameter schema, by function name."""
    return {fn["name"]: fn.get("parameters") or {} for fn in item.functions}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure both parts, print the tables and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BFCL data folder")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="evaluation sample size")
    parser.add_argument("--model-items", type=int, default=40, help="per category")
    parser.add_argument("--no-model", action="store_true", help="only the accepted answers")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"accepted": {}, "model": {}}
    for category in RELEVANT:
        verdicts = [v for item in load_items(args.data, category) for v in accepted_grounded(item)]
        figures["accepted"][category] = {"calls": len(verdicts), "grounded": sum(verdicts)}
    if not args.no_model:
        options = BfclOptions(data=args.data)
        chat = load_chat(options)
        chosen = {
            category: random.Random(1).sample(tuning, min(args.model_items, len(tuning)))
            for category in (*RELEVANT, "irrelevance")
            for tuning in [splits(args.data, category, args.limit)["tuning"]]
        }
        total, done = sum(len(items) for items in chosen.values()), 0
        for category, items in chosen.items():
            rows = []
            for item in items:
                rows.append(model_calls(chat, item, options))
                done += 1
                stderr_progress(done, total, category, unit="item")
            figures["model"][category] = rows
    print_tables(figures)
    return figures


def print_tables(figures: dict[str, Any]) -> None:
    """Print the accepted-answer table and, if measured, the model-call table."""
    body = [
        [category, str(row["calls"]), f"{row['grounded'] / max(1, row['calls']):.1%}"]
        for category, row in figures["accepted"].items()
    ]
    print("\n".join(text_table(["category", "accepted calls", "grounded"], body, {0})))
    if not figures["model"]:
        return
    print()
    body = []
    for category, rows in figures["model"].items():
        if not rows:
            continue
        called = [r for r in rows if r["called"]]
        right = [r for r in called if r["correct"]]
        wrong = [r for r in called if not r["correct"]]
        before = sum(r["correct"] for r in rows)
        if category == "irrelevance":
            after = sum(r["correct"] or r["stopped"] for r in rows)
        else:
            after = sum(r["correct"] and not r["stopped"] for r in rows)
        body.append(
            [
                category,
                str(len(rows)),
                str(len(called)),
                f"{sum(r['stopped'] for r in right)}/{len(right)}",
                f"{sum(r['stopped'] for r in wrong)}/{len(wrong)}",
                f"{before / len(rows):.1%}",
                f"{after / len(rows):.1%}",
            ]
        )
    header = ["category", "items", "calls", "correct stopped", "wrong stopped", "acc", "grounded"]
    print("\n".join(text_table(header, body, {0})))


if __name__ == "__main__":
    main()
