"""BFCL results: per-category summaries, the printed table, a markdown table and a plot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from goalgraph.eval.bfcl_scoring import FAILURE_KINDS
from goalgraph.eval.figures import percentile, text_table

__all__ = [
    "render_markdown",
    "render_table",
    "summarize",
    "write_plot",
]

RELEVANT = ("simple_python", "multiple")
"""Categories where a call is expected."""


def _category_row(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    seconds = [float(r["seconds"]) for r in records]
    n = len(records)
    return {
        "n": n,
        "accuracy": sum(bool(r["ok"]) for r in records) / n,
        "parsable": sum(bool(r["parsable"]) for r in records) / n,
        "token_limit": sum(bool(r["hit_token_limit"]) for r in records),
        "latency_p50_s": percentile(seconds, 50),
        "latency_p95_s": percentile(seconds, 95),
    }


def summarize(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarise per-item records into accuracy, parsability, latency and failures per mode.

    Each mode gets ``categories`` (per-category rows), ``relevance`` (the mean accuracy of the
    categories that expect a call), ``irrelevance``, ``relevance_irrelevance_mean`` (their mean,
    when both were run), ``failures`` (counts by kind), ``calls_dropped_by_grounding`` and
    overall latency percentiles.
    """
    summary: dict[str, Any] = {}
    for mode in dict.fromkeys(str(r["mode"]) for r in records):
        mine = [r for r in records if r["mode"] == mode]
        by_category: dict[str, list[Mapping[str, Any]]] = {}
        for record in mine:
            by_category.setdefault(str(record["category"]), []).append(record)
        rows = {category: _category_row(group) for category, group in by_category.items()}
        relevant = [rows[c]["accuracy"] for c in RELEVANT if c in rows]
        relevance = sum(relevant) / len(relevant) if relevant else None
        irrelevance = rows["irrelevance"]["accuracy"] if "irrelevance" in rows else None
        both = None if relevance is None or irrelevance is None else (relevance + irrelevance) / 2
        kinds = Counter(str(r["kind"]) for r in mine if not r["ok"])
        seconds = [float(r["seconds"]) for r in mine]
        summary[mode] = {
            "categories": rows,
            "relevance": relevance,
            "irrelevance": irrelevance,
            "relevance_irrelevance_mean": both,
            "parsable": sum(bool(r["parsable"]) for r in mine) / len(mine),
            "failures": {kind: kinds[kind] for kind in FAILURE_KINDS if kinds[kind]},
            "calls_dropped_by_grounding": sum(bool(r.get("dropped_call")) for r in mine),
            "latency_p50_s": percentile(seconds, 50),
            "latency_p95_s": percentile(seconds, 95),
        }
    return summary


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rows(summary: Mapping[str, Any]) -> list[list[str]]:
    body = []
    for mode, result in summary.items():
        for category, row in result["categories"].items():
            body.append(
                [
                    category,
                    mode,
                    str(row["n"]),
                    _pct(row["accuracy"]),
                    _pct(row["parsable"]),
                    f"{row['latency_p50_s']:.2f}",
                    f"{row['latency_p95_s']:.2f}",
                    str(row["token_limit"]),
                ]
            )
    return body


_HEADER = ("category", "mode", "n", "accuracy", "parsable", "p50 s", "p95 s", "token limit")


def render_table(summary: Mapping[str, Any]) -> list[str]:
    """Return the plain-text report: per-category rows, the means, and failure counts."""
    lines = text_table(_HEADER, _rows(summary), left={0, 1})
    lines.append("")
    means = [
        [
            mode,
            _pct(result["relevance"]),
            _pct(result["irrelevance"]),
            _pct(result["relevance_irrelevance_mean"]),
            _pct(result["parsable"]),
        ]
        for mode, result in summary.items()
    ]
    lines += text_table(
        ("mode", "relevance", "irrelevance", "rel/irrel mean", "parsable"), means, left={0}
    )
    lines.append("")
    lines.append("failures by kind:")
    for mode, result in summary.items():
        kinds = ", ".join(f"{k} {n}" for k, n in result["failures"].items()) or "none"
        dropped = result.get("calls_dropped_by_grounding")
        lines.append(
            f"  {mode}: {kinds}" + (f" (grounding dropped {dropped} calls)" if dropped else "")
        )
    return lines


def render_markdown(summary: Mapping[str, Any], *, title: str, command: str) -> str:
    """Return a markdown page with the per-category table, the means and the command."""
    out = [f"# {title}", "", f"Reproduce: `{command}`", ""]
    out.append("| " + " | ".join(_HEADER) + " |")
    out.append("|" + "|".join(["---", "---"] + ["---:"] * (len(_HEADER) - 2)) + "|")
    out += ["| " + " | ".join(row) + " |" for row in _rows(summary)]
    out += [
        "",
        "| mode | relevance | irrelevance | rel/irrel mean | failures |",
        "|---|---:|---:|---:|---|",
    ]
    for mode, result in summary.items():
        kinds = ", ".join(f"{k} {n}" for k, n in result["failures"].items()) or "none"
        cells = [
            mode,
            _pct(result["relevance"]),
            _pct(result["irrelevance"]),
            _pct(result["relevance_irrelevance_mean"]),
            kinds,
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write_plot(summary: Mapping[str, Any], path: Path, *, title: str) -> None:
    """Draw accuracy per category (bars per mode) and latency p50/p95 per mode to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary)
    categories = list(dict.fromkeys(c for m in modes for c in summary[m]["categories"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), width_ratios=[2, 1])
    width = 0.8 / max(1, len(modes))
    for index, mode in enumerate(modes):
        rows = summary[mode]["categories"]
        values = [100 * rows[c]["accuracy"] if c in rows else 0.0 for c in categories]
        xs = [i + (index - (len(modes) - 1) / 2) * width for i in range(len(categories))]
        bars = left.bar(xs, values, width, label=mode)
        left.bar_label(bars, fmt="%.0f", fontsize=8)
    left.set_xticks(range(len(categories)), categories)
    left.set_ylabel("accuracy (%)")
    left.set_ylim(0, 105)
    left.set_title("BFCL AST accuracy")
    left.legend()
    p50 = [summary[m]["latency_p50_s"] for m in modes]
    p95 = [summary[m]["latency_p95_s"] for m in modes]
    xs = list(range(len(modes)))
    right.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    right.bar([x + 0.2 for x in xs], p95, 0.4, label="p95")
    right.set_xticks(xs, modes)
    right.set_ylabel("seconds per item")
    right.set_title("latency")
    right.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
