"""Can the model judge its own plan steps, or whether its results answer the goal?

Two yes/no probes on a local model, scored by the model's own probabilities: the log-odds of
"yes" against "no" as the first answer token, and the AUC with which those log-odds separate
the right cases from the wrong ones (0.5 is chance).

* **step**: "Is this step needed to reach the goal?" for steps of the 0.5B model's own plans on
  the stockroom tuning tasks: the steps a goal needs, against the ones its plan walked in from
  the tool catalog ("Set price of wood screws" for a delivery).
* **answer**: "Does the information found answer the question?" for (question, tool results)
  pairs built from tuning runs: results that hold the answer, against results that do not.

Every case comes from the tuning split. A rule built on either judgement would need an AUC well
above chance; on Qwen2.5-Coder-0.5B both are near it
(``benchmarks/results/plan_directly_qwen2.5-coder-0.5b.md``)::

    .venv/bin/python benchmarks/self_judgement.py --model qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import environment, text_table

from goalgraph.llm.loader import load_local_model

# Tool results as the stockroom server returns them (benchmarks/servers/inventory_server.py).
_SUPPLIER = (
    "ChemCo Finishes (chemco)\ncontact: Priya Nair\nemail: priya.nair@chemco.example\n"
    "phone: +31 20 555 0148\ndelivery time: 9 days\nsupplies: varnish-oak"
)
_PRODUCT = (
    "varnish-oak: Oak varnish 1 l (finishes)\nin stock: 9 units on shelf C3\nprice: 18.50 EUR\n"
    "reorder level: 10\nsupplier: ChemCo Finishes (chemco)"
)
_OPEN = (
    "SO-1001: open, Ada Brook, total 26.60 EUR\nSO-1003: open, Lena Fischer, total 55.50 EUR\n"
    "SO-1004: open, Ada Brook, total 49.80 EUR\nSO-1006: open, Omar Haddad, total 25.00 EUR"
)
_ALL = (
    "SO-1001: open, Ada Brook, total 26.60 EUR\nSO-1002: shipped, Omar Haddad, total 114.00 EUR\n"
    "SO-1003: open, Lena Fischer, total 55.50 EUR\nSO-1004: open, Ada Brook, total 49.80 EUR\n"
    "SO-1005: cancelled, Lena Fischer, total 12.00 EUR\nSO-1006: open, Omar Haddad, total 25.00 EUR"
)
_SHIPPED = (
    "order SO-1002: shipped, placed 2024-05-03 by Omar Haddad (c-omar), total 114.00 EUR - "
    "10 x drawer-slide-45 at 11.40"
)
_LENA_ORDER = (
    "order SO-1003: open, placed 2024-05-06 by Lena Fischer (c-lena), total 55.50 EUR - "
    "3 x varnish-oak at 18.50"
)
_LENA = (
    "Lena Fischer (c-lena), Fischer Möbel\nemail: lena.fischer@fischermoebel.example\n"
    "phone: +49 40 5550 7788\norders: SO-1003 (open), SO-1005 (cancelled)"
)
_HINGE = "hinge-brass: Brass hinge - 14 in stock, 3.20 EUR each"
_SCREWS = (
    "screw-wood-4: Wood screw 4 mm (fasteners)\nin stock: 860 units on shelf A2\nprice: 0.05 EUR"
)

STEP_CASES: list[tuple[str, list[tuple[str, bool]]]] = [
    (
        "A delivery of 500 wood screws just came in, please book it.",
        [
            ("Search for wood screws in the stockroom", True),
            ("Adjust stock of wood screws", True),
            ("Set price of wood screws", False),
            ("Get supplier of wood screws", False),
        ],
    ),
    (
        "25 packs of P120 sandpaper were delivered; add them to stock.",
        [
            ("Search for P120 sandpaper in stock", True),
            ("Adjust stock of P120 sandpaper", True),
            ("Set price of P120 sandpaper", False),
            ("Get supplier of P120 sandpaper", False),
        ],
    ),
    (
        "Walnut knobs go up by 10%. Update the price and tell me what they cost now.",
        [
            ("Search for Walnut knobs in the stockroom", True),
            ("Adjust the stock of the Walnut knobs", False),
            ("Set the price of the Walnut knobs", True),
            ("Get the supplier of the Walnut knobs", False),
        ],
    ),
    (
        "Yuki Tanaka would like 3 bar clamps; place the order for her.",
        [
            ("Search for clamps in the stockroom", True),
            ("Adjust the stock count of the clamps", False),
            ("Set the price of the clamps", False),
            ("Place the order for Yuki Tanaka", True),
        ],
    ),
    (
        "Write off all 37 tubs of PVA glue, they froze in the van.",
        [
            ("Search for PVA glue in the van", True),
            ("Adjust stock of PVA glue", True),
            ("Set price of PVA glue", False),
            ("Place order for 37 tubs of PVA glue", False),
            ("Cancel order for 37 tubs of PVA glue", False),
        ],
    ),
    (
        "Who placed order SO-1003, and how do I reach them by email?",
        [
            ("Find the order SO-1003", True),
            ("List the orders", False),
            ("Send an email to the customer", False),
        ],
    ),
    (
        "Has Omar's kitchen order SO-1002 gone out yet?",
        [
            ("Search for Omar's kitchen order SO-1002 in the stockroom", True),
            ("Check the supplier of Omar's kitchen order SO-1002", False),
        ],
    ),
    (
        "Compute 12*(3+4), then write the result to result.txt",
        [
            ("Compute 12*(3+4)", True),
            ("Write the result to result.txt", True),
            ("Read result.txt", False),
        ],
    ),
]
"""(goal, [(plan step, whether the goal needs it)])."""

ANSWER_CASES: list[tuple[str, list[tuple[str, bool]]]] = [
    (
        "What's the email address of whoever supplies our oak varnish?",
        [
            ("varnish-oak: Oak varnish 1 l - 9 in stock, 18.50 EUR each", False),
            (_PRODUCT, False),
            (_SUPPLIER, True),
            (f"{_PRODUCT}\n{_SUPPLIER}", True),
        ],
    ),
    (
        "Which orders are still waiting to go out?",
        [(_OPEN, True), (_ALL, True), (_LENA_ORDER, False), (_HINGE, False)],
    ),
    (
        "Has Omar's kitchen order SO-1002 gone out yet?",
        [
            (_HINGE, False),
            (_SHIPPED, True),
            ("no product matches 'SO-1002'; SKUs: bolt-m6, clamp-bar-60, dowel-8", False),
        ],
    ),
    (
        "Who placed order SO-1003, and how do I reach them by email?",
        [
            ("no product matches 'SO-1003'; SKUs: bolt-m6, clamp-bar-60", False),
            (_LENA_ORDER, False),
            (f"{_LENA_ORDER}\n{_LENA}", True),
            (_ALL, False),
        ],
    ),
    (
        "Which open order is the biggest, and what's the email of the customer behind it?",
        [(_OPEN, False), (f"{_OPEN}\n{_LENA}", True), (_LENA, False)],
    ),
    ("How many wood screws do we have?", [(_SCREWS, True), (_HINGE, False)]),
    ("What is 17 times 23?", [("391", True), ("no matches for '17' in '.'", False)]),
]
"""(question, [(tool results, whether they answer it)])."""

PROMPTS: dict[str, list[tuple[str, str]]] = {
    "step": [
        (
            "plain",
            "Goal: {goal}\nProposed step: {text}\n"
            "Is this step needed to reach the goal? Answer yes or no.",
        ),
        (
            "names unasked changes",
            "Goal: {goal}\nProposed step: {text}\nDoes the goal ask for this step (or need it "
            "to get what it asks)? A step that changes something the goal does not mention is "
            "not needed. Answer yes or no.",
        ),
    ],
    "answer": [
        (
            "answers completely",
            "Question: {goal}\nInformation found:\n{text}\n\n"
            "Does the information found answer the question completely? Answer yes or no.",
        ),
        (
            "contains everything",
            "Question: {goal}\nTool results:\n{text}\n\n"
            "Do these results contain everything needed to answer the question? "
            "Answer yes or no.",
        ),
    ],
}
"""Per probe, (label, prompt) wordings."""


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Return the probability that a positive scores above a negative (ties count half)."""
    pairs = list(itertools.product(positives, negatives))
    if not pairs:
        raise ValueError("AUC needs at least one positive and one negative")
    return sum((p > n) + 0.5 * (p == n) for p, n in pairs) / len(pairs)


class YesNoScorer:
    """Scores a user turn by the model's log-odds of answering "yes" rather than "no"."""

    def __init__(self, model_name: str) -> None:
        """Load ``model_name`` as the agent does (``goalgraph.llm.loader``)."""
        import torch

        self._torch = torch
        self.model, self.tokenizer, self.device = load_local_model(model_name)
        self._yes = [self._first_token(word) for word in ("yes", "Yes")]
        self._no = [self._first_token(word) for word in ("no", "No")]

    def _first_token(self, word: str) -> int:
        return int(self.tokenizer.encode(word, add_special_tokens=False)[0])

    def __call__(self, text: str) -> float:
        """Return log P(yes) - log P(no) for the first token of the answer to ``text``."""
        torch = self._torch
        prompt = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        ids = self.tokenizer(prompt, return_tensors="pt").input_ids.to(self.device)
        with torch.no_grad():
            logits = self.model(ids).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        yes = torch.logsumexp(logp[self._yes], dim=0)
        no = torch.logsumexp(logp[self._no], dim=0)
        return float(yes - no)


def run(model_name: str) -> dict[str, Any]:
    """Score every case under every wording; return rows and per-wording AUCs."""
    score = YesNoScorer(model_name)
    cases = {"step": STEP_CASES, "answer": ANSWER_CASES}
    rows, summary = [], []
    for probe, wordings in PROMPTS.items():
        for label, template in wordings:
            scored = [
                (right, score(template.format(goal=goal, text=text)), goal, text)
                for goal, items in cases[probe]
                for text, right in items
            ]
            rows += [
                {"probe": probe, "wording": label, "right": r, "log_odds": s, "goal": g, "text": t}
                for r, s, g, t in scored
            ]
            positives = [s for r, s, _, _ in scored if r]
            negatives = [s for r, s, _, _ in scored if not r]
            summary.append(
                {
                    "probe": probe,
                    "wording": label,
                    "cases": len(scored),
                    "auc": auc(positives, negatives),
                }
            )
            print(f"  {probe} / {label}: done", file=sys.stderr, flush=True)
    return {"model": model_name, "summary": summary, "rows": rows}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both probes, print the AUC table and optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="a ladder model or path")
    parser.add_argument("--out", type=Path, help="write every scored case here (JSON)")
    args = parser.parse_args(argv)
    result = run(args.model)
    result["environment"] = environment(["torch", "transformers"])
    table = [
        [r["probe"], r["wording"], str(r["cases"]), f"{r['auc']:.2f}"] for r in result["summary"]
    ]
    print("\n".join(text_table(["probe", "wording", "cases", "AUC"], table, left={0, 1})))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
