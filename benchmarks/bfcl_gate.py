"""How well can a call/no-call choice separate BFCL's irrelevant questions from relevant ones?

What is measured
----------------
Scores per item, on BFCL items *outside* ``benchmarks/bfcl.py``'s evaluation sample (the tuning
split, where the tool gate's threshold was chosen) and on the sample itself:

* ``gate``: the tool gate's score, the largest all-MiniLM-L6-v2 cosine similarity between the
  question and an offered function's name and description (``goalgraph.policies.tool_gate``).
* ``model``: the bundled model's own preference, log P(``"use_tool": false``) minus
  log P(``"use_tool": true``) right after the prompt of constrained mode.
* ``channel``: how much more likely the bundled model finds an offered function after reading the
  question, the largest (over functions) mean per-token log P(function | question) minus
  log P(function), as in noisy-channel scoring for small models.

``model`` and ``channel`` need forward passes, so they are taken on ``--model-items`` per category
and split. For each score it prints the AUC (the chance that a random irrelevant item scores as
less relevant than a random relevant one), also among the items the gate keeps at ``--threshold``
(where a second score would have to help), and what gate thresholds keep and stop.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/bfcl_gate.py              # ~10 min: all scores
    .venv/bin/python benchmarks/bfcl_gate.py --no-model   # ~1 min: the gate only
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import text_table

from goalgraph.eval.bfcl import DEFAULT_DATA, DEFAULT_LIMIT, BfclOptions, load_chat
from goalgraph.eval.bfcl_data import BfclItem, function_tool, load_items, sample_items
from goalgraph.policies.tool_gate import ToolGate

RELEVANT = ("simple_python", "multiple")
THRESHOLDS = (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55)


def splits(data: Path, category: str, limit: int) -> dict[str, list[BfclItem]]:
    """Return the evaluation ``sample`` (seed 0, as benchmarks/bfcl.py) and the ``tuning`` rest."""
    items = load_items(data, category)
    chosen = {item.id for item in sample_items(items, limit, seed=0)}
    return {
        "tuning": [item for item in items if item.id not in chosen],
        "sample": [item for item in items if item.id in chosen],
    }


def gate_score(gate: ToolGate, item: BfclItem) -> float:
    """The largest similarity between the question and an offered function."""
    return max(gate.scores(item.question, [{"function": fn} for fn in item.functions]))


def model_score(chat: Any, item: BfclItem) -> float:
    """log P(no call) - log P(call) at the constrained turn's ``"use_tool"`` decision."""
    from goalgraph.eval.bfcl_modes import CONSTRAINED_SYSTEM, _messages

    tools = [
        function_tool(fn, question=item.question, parameter_notes=False) for fn in item.functions
    ]
    call = chat._prepare(_messages(item, CONSTRAINED_SYSTEM), None, {"tools": tools})
    decision = call.prompt + '{"use_tool":'
    return _logp(chat, decision, " false", mean=False) - _logp(chat, decision, " true", mean=False)


def channel_score(chat: Any, item: BfclItem) -> float:
    """The largest gain in a function's mean token log-probability from reading the question."""
    question = item.question.strip()
    gains = []
    for fn in item.functions:
        text = f" {fn['name']}: {fn.get('description', '')}"
        read = _logp(chat, f"A user asks: {question}\nThe tool that answers it:", text)
        gains.append(read - _logp(chat, "The tool:", text))
    return max(gains)


def _logp(chat: Any, prefix: str, text: str, *, mean: bool = True) -> float:
    """log P(``text`` | ``prefix``) under the bundled model, summed or per token."""
    import torch

    head = chat.tokenizer(prefix, add_special_tokens=False)["input_ids"]
    ids = chat.tokenizer(prefix + text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        log_probs = torch.log_softmax(chat.hf_model(ids).logits[0].float(), -1)
    tokens = [log_probs[t - 1, ids[0, t]].item() for t in range(len(head), ids.shape[1])]
    return sum(tokens) / max(1, len(tokens)) if mean else sum(tokens)


def auc(low: Sequence[float], high: Sequence[float]) -> float:
    """P(a random ``low`` score < a random ``high`` score), ties counting half."""
    pairs = [(a < b) + 0.5 * (a == b) for a in low for b in high]
    return sum(pairs) / len(pairs)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Score both splits, print the tables and return the scores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BFCL data folder")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="evaluation sample size")
    parser.add_argument("--model-items", type=int, default=30, help="per category and split")
    parser.add_argument("--threshold", type=float, default=0.4, help="the gate, for the tail AUC")
    parser.add_argument("--no-model", action="store_true", help="only the gate's score")
    args = parser.parse_args(argv)
    gate = ToolGate()
    chat = None if args.no_model else load_chat(BfclOptions(data=args.data))
    scores: dict[str, dict[str, dict[str, list[float]]]] = {}
    for category in (*RELEVANT, "irrelevance"):
        for split, items in splits(args.data, category, args.limit).items():
            print(f"{category} {split}: {len(items)} items", file=sys.stderr, flush=True)
            row = scores.setdefault(split, {}).setdefault(category, {})
            row["gate"] = [gate_score(gate, item) for item in items]
            if chat is not None:
                few = random.Random(7).sample(range(len(items)), min(args.model_items, len(items)))
                row["model"] = [model_score(chat, items[i]) for i in few]
                row["channel"] = [channel_score(chat, items[i]) for i in few]
                row["gate_of_scored"] = [row["gate"][i] for i in few]
    print_tables(scores, args.threshold)
    return scores


def print_tables(scores: dict[str, dict[str, dict[str, list[float]]]], threshold: float) -> None:
    """Print the AUC per split and score (also where the gate keeps), then the gate's thresholds."""
    body = []
    for split, by_category in scores.items():
        for score in ("gate", "model", "channel"):
            if score not in by_category["irrelevance"]:
                continue
            floors = (None,) if score == "gate" else (None, threshold)
            for floor in floors:
                relevant = _kept(by_category, RELEVANT, score, floor)
                irrelevant = _kept(by_category, ("irrelevance",), score, floor)
                if not relevant or not irrelevant:
                    continue
                label = score if floor is None else f"{score}, gate >= {floor}"
                # The model score grows with "no call"; the others with relevance.
                pair = (relevant, irrelevant) if score == "model" else (irrelevant, relevant)
                counts = [str(len(relevant)), str(len(irrelevant))]
                body.append([split, label, *counts, f"{auc(*pair):.3f}"])
    print("\n".join(text_table(["split", "score", "relevant", "irrelevant", "AUC"], body, {0, 1})))
    print()
    body = []
    for split, by_category in scores.items():
        relevant = [s for c in RELEVANT for s in by_category[c]["gate"]]
        irrelevant = by_category["irrelevance"]["gate"]
        if not relevant or not irrelevant:
            continue
        for gate in THRESHOLDS:
            kept = sum(s >= gate for s in relevant) / len(relevant)
            stopped = sum(s < gate for s in irrelevant) / len(irrelevant)
            body.append([split, f"{gate:.2f}", f"{kept:.1%}", f"{stopped:.1%}"])
    header = ["split", "gate", "relevant kept", "irrelevant stopped"]
    print("\n".join(text_table(header, body, {0})))


def _kept(
    by_category: dict[str, dict[str, list[float]]],
    categories: Sequence[str],
    score: str,
    floor: float | None,
) -> list[float]:
    """The ``score`` values of ``categories`` whose item's gate score reaches ``floor`` (if any)."""
    gates = "gate" if score == "gate" else "gate_of_scored"
    return [
        value
        for category in categories
        for value, gate in zip(
            by_category[category][score], by_category[category][gates], strict=True
        )
        if floor is None or gate >= floor
    ]


if __name__ == "__main__":
    main()
