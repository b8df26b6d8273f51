"""The ``drop_invented_optional`` rule on BFCL, on and off, from one ``bfcl.py`` results file.

The rule acts after the model has answered: it leaves out of each call the optional arguments
whose values the request does not mention (``goalgraph.policies.grounding``). The model's
output does not depend on it, so both arms come from one run, exactly:

* a run made **without** the rule: its calls are the "off" arm; the rule applied to them is
  the "on" arm;
* a run made **with** it (its records carry ``left_out_arguments``): its calls are the "on"
  arm; putting back what was left out gives the "off" arm.

Each call is re-scored with BFCL's rules (``goalgraph.eval.bfcl.judge``); irrelevance items are
left out (the rule never removes a call). The table has one row per mode and category.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/bfcl_optional.py benchmarks/results/bfcl_qwen2.5-coder-0.5b.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import text_table

from goalgraph.eval.bfcl import DEFAULT_DATA, judge
from goalgraph.eval.bfcl_data import BfclItem, function_tool, load_items
from goalgraph.eval.bfcl_fetch import resolve_data
from goalgraph.eval.bfcl_modes import Attempt
from goalgraph.policies.grounding import trim_invented_optional

Calls = list[dict[str, dict[str, Any]]]


def both_arms(item: BfclItem, record: dict[str, Any]) -> tuple[Calls, Calls] | None:
    """Return the calls of ``record`` without and with the rule; ``None`` when it made none."""
    calls: Calls | None = record.get("calls")
    if not calls:
        return None
    left_out = record.get("left_out_arguments")
    if left_out is not None:
        restored = [dict(call) for call in calls]
        for index, call in enumerate(restored):
            ((name, args),) = call.items()
            dropped = next((d["arguments"] for d in left_out if d.get("call", index) == index), {})
            restored[index] = {name: {**args, **dropped}}
        return restored, calls
    parameters = {
        fn["name"]: function_tool(fn, prune_optional=False)["function"]["parameters"]
        for fn in item.functions
    }
    trimmed = []
    for call in calls:
        ((name, args),) = call.items()
        kept, _ = trim_invented_optional(args, parameters.get(name) or {}, item.question)
        trimmed.append({name: kept})
    return calls, trimmed


def _ok(item: BfclItem, record: dict[str, Any], calls: Calls) -> bool:
    attempt = Attempt(
        calls=calls,
        raw="",
        hit_token_limit=bool(record.get("hit_token_limit")),
        seconds=0.0,
        output_tokens=0,
        cut_off_call=record.get("cut_off_call"),
    )
    return judge(item, attempt).ok


def compare(result: dict[str, Any], data: Path) -> list[dict[str, Any]]:
    """Return, per mode and category, the items BFCL scores correct without and with the rule,
    and the ids it wins and loses."""
    records = [r for r in result["items"] if r["category"] != "irrelevance"]
    items = {
        item.id: item
        for category in sorted({r["category"] for r in records})
        for item in load_items(resolve_data(data, category), category)
    }
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["mode"], record["category"])
        row = rows.setdefault(
            key,
            {"mode": key[0], "category": key[1], "n": 0, "off": 0, "on": 0, "won": [], "lost": []},
        )
        item = items[record["id"]]
        arms = both_arms(item, record)
        off, on = (
            (_ok(item, record, arms[0]), _ok(item, record, arms[1])) if arms else (False, False)
        )
        row["n"] += 1
        row["off"] += off
        row["on"] += on
        if on != off:
            row["won" if on else "lost"].append(record["id"])
    return list(rows.values())


def main() -> None:
    """Print the with/without table of each results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bfcl.py results JSON files")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BFCL data folder")
    args = parser.parse_args()
    for path in args.results:
        result = json.loads(path.read_text())
        options = result["options"]
        print(f"{path} (model {options['model']}, seed {options['seed']})")
        body = [
            [
                row["mode"],
                row["category"],
                str(row["n"]),
                f"{row['off']}",
                f"{row['on']}",
                f"{row['on'] - row['off']:+d}",
                " ".join(row["won"]) or "-",
                " ".join(row["lost"]) or "-",
            ]
            for row in compare(result, args.data)
        ]
        header = ["mode", "category", "n", "off", "on", "change", "won", "lost"]
        print("\n".join(text_table(header, body, left={0, 1, 6, 7})))
        print()


if __name__ == "__main__":
    main()
