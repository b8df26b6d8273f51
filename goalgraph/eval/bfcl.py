"""BFCL tool-calling accuracy of goalgraph's model layer: ``goalgraph eval bfcl``.

Runs BFCL's simple_python, multiple and irrelevance categories (and, on request, parallel and
parallel_multiple, fetched by ``bfcl_fetch``) through the same
``LocalChatModel`` in the modes of ``bfcl_modes.MODES``: ``constrained`` (the agent's grammar-bound
tool calls, with an explicit early no-call decision), ``gated`` (behind the tool gate),
``grounded`` (gated, plus argument grounding) and ``plain`` (a BFCL-style prompt, parsed
leniently). Answers are scored with BFCL's AST-match rules (``goalgraph.eval.bfcl_scoring``).
Loading, sampling and schema conversion live in ``bfcl_data``, the modes in ``bfcl_modes``, the
tables and the plot in ``bfcl_report``. torch and transformers are imported only when a run starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast, get_args

import typer

from goalgraph.eval.bfcl_data import (
    CATEGORIES,
    DEFAULT_CATEGORIES,
    PARALLEL_CATEGORIES,
    BfclDataError,
    BfclItem,
    load_items,
    sample_items,
)
from goalgraph.eval.bfcl_fetch import resolve_data
from goalgraph.eval.bfcl_modes import (
    MODES,
    Attempt,
    ConstrainedSettings,
    run_constrained,
    run_plain,
)
from goalgraph.eval.bfcl_report import render_markdown, render_table, summarize, write_plot
from goalgraph.eval.bfcl_scoring import (
    FailureKind,
    Verdict,
    check_calls,
    check_irrelevance,
    check_parallel,
)
from goalgraph.llm.grammar import NoCallStyle
from goalgraph.policies import guard_tool_choice
from goalgraph.policies.tool_gate import DEFAULT_TOOL_GATE
from goalgraph.profiles import profile_of_model, resolve_profile, rules_of_model

if TYPE_CHECKING:
    from goalgraph.llm.chat import LocalChatModel

__all__ = [
    "DEFAULT_DATA",
    "DEFAULT_LIMIT",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_MAX_PARALLEL_CALLS",
    "DEFAULT_PARALLEL_MAX_NEW_TOKENS",
    "QUICK_LIMIT",
    "BfclOptions",
    "bfcl_command",
    "judge",
    "load_chat",
    "load_sample",
    "parse_settings",
    "run_bfcl",
    "stderr_progress",
    "write_outputs",
]

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bfcl"
"""``../shared/data/bfcl`` beside the repository."""
DEFAULT_LIMIT = 30
"""Items per category by default: both modes on the three categories took ~20-25 minutes on
this shared 2-core CPU (constrained ~5 s an item, plain ~11 s: it rambles to the token limit)."""
QUICK_LIMIT = 3
"""Items per category with ``--quick``."""
DEFAULT_MAX_NEW_TOKENS = 128
"""Tokens per answer; a call with several arguments takes 25-60."""
DEFAULT_PARALLEL_MAX_NEW_TOKENS = 320
"""Tokens per answer in the parallel categories, which expect 2-4 calls (at most 8)."""
DEFAULT_MAX_PARALLEL_CALLS = 8
"""Calls one constrained reply may hold in the parallel categories: BFCL's largest answer."""

Progress = Callable[[int, int, str], None]
"""A progress callback: ``progress(done, total, label)``."""


@dataclass(frozen=True)
class BfclOptions:
    """What one BFCL run evaluates and how."""

    data: Path = DEFAULT_DATA
    """The BFCL data folder."""
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    """Categories to run (the parallel ones are fetched when the data folder lacks them)."""
    modes: tuple[str, ...] = MODES
    """Modes to run (see ``goalgraph.eval.bfcl_modes.MODES``)."""
    model: str = "smollm2"
    """A model name, local model folder or GGUF file (see ``load_local_model``)."""
    limit: int | None = DEFAULT_LIMIT
    """Items per category (a fixed-seed sample); ``None`` for all."""
    seed: int = 0
    """Seed of the sample."""
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    """Tokens per answer, both modes."""
    parallel_max_new_tokens: int = DEFAULT_PARALLEL_MAX_NEW_TOKENS
    """Tokens per answer in the parallel categories, both modes."""
    max_parallel_calls: int = DEFAULT_MAX_PARALLEL_CALLS
    """Calls one constrained reply may hold in the parallel categories."""
    threads: int | None = 1
    """torch CPU threads; one by default: on a 2-core machine shared with another busy process,
    two threads made decoding 3-5 times slower here (``None``: torch's default)."""
    no_call: NoCallStyle = "decision"
    """How constrained mode offers the no-call choice (see ``tool_call_schema``)."""
    tool_gate: float = DEFAULT_TOOL_GATE
    """The threshold of the ``gated`` and ``grounded`` modes: constrained decoding is offered only
    the functions whose MiniLM similarity to the question reaches it (``policies.tool_gate``)."""
    constrained: dict[str, bool] = field(default_factory=dict)
    """Schema presentation in constrained mode: settings of ``ConstrainedSettings`` that
    override those of the model's profile (``ConstrainedSettings.for_profile``)."""

    def __post_init__(self) -> None:
        """Reject unknown categories and modes with a one-line message."""
        for category in self.categories:
            if category not in CATEGORIES:
                known = ", ".join(CATEGORIES)
                raise BfclDataError(f"unknown BFCL category {category!r}; known: {known}")
        try:
            ConstrainedSettings.for_profile("tiny", self.constrained)
        except ValueError as exc:
            raise BfclDataError(str(exc)) from None
        for mode in self.modes:
            if mode not in MODES:
                raise BfclDataError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")


def load_sample(options: BfclOptions) -> dict[str, list[BfclItem]]:
    """Load each requested category and draw its fixed-seed sample."""
    return {
        category: sample_items(
            load_items(resolve_data(options.data, category), category),
            options.limit,
            seed=options.seed,
        )
        for category in options.categories
    }


def load_chat(options: BfclOptions) -> LocalChatModel:
    """Load the model once for both modes: greedy, no generation or prefix cache, no thought.

    Raises:
        ModelLoadError: The model cannot be loaded.
    """
    from goalgraph.llm.chat import LocalChatModel
    from goalgraph.spec import CacheSpec, ModelSpec

    spec = ModelSpec(
        name=options.model,
        max_new_tokens=options.max_new_tokens,
        temperature=0.0,
        threads=options.threads,
        thought=False,
        cache=CacheSpec(enabled=False),
        # Every item has its own system turn, so a prefix KV cache would never be reused.
        prefix_cache=False,
    )
    return LocalChatModel.from_spec(
        spec, no_call=options.no_call, max_parallel_calls=options.max_parallel_calls
    )


def judge(item: BfclItem, attempt: Attempt) -> Verdict:
    """Score one answer with BFCL's rules; an unreadable answer is a failure of its own kind."""
    if item.category == "irrelevance":
        if attempt.cut_off_call:
            # The grammar had already committed to this function when the token limit struck.
            return check_irrelevance([{attempt.cut_off_call: {}}])
        # As in BFCL, an answer that cannot be read as a call counts as no call.
        return check_irrelevance(attempt.calls or [])
    if attempt.calls is None:
        kind: FailureKind = "token_limit" if attempt.hit_token_limit else "unparsable"
        return Verdict(ok=False, kind=kind, detail=attempt.raw[:120])
    assert item.accepted is not None
    if item.category in PARALLEL_CATEGORIES:
        return check_parallel(item.functions, attempt.calls, item.accepted)
    return check_calls(item.functions, attempt.calls, item.accepted)


def _answer(
    chat: LocalChatModel,
    item: BfclItem,
    mode: str,
    options: BfclOptions,
    constrained: ConstrainedSettings,
    *,
    gate: float | None,
    grounded: bool,
) -> Attempt:
    parallel = item.category in PARALLEL_CATEGORIES
    tokens = options.parallel_max_new_tokens if parallel else options.max_new_tokens
    if mode != "plain":
        return run_constrained(
            chat,
            item,
            max_new_tokens=tokens,
            settings=constrained,
            policies=guard_tool_choice(chat, gate=gate, ground=grounded),
            parallel=parallel,
        )
    return run_plain(chat, item, max_new_tokens=tokens, parallel=parallel)


def _record(item: BfclItem, mode: str, attempt: Attempt, verdict: Verdict) -> dict[str, Any]:
    return {
        "id": item.id,
        "category": item.category,
        "mode": mode,
        "ok": verdict.ok,
        "kind": verdict.kind,
        "detail": verdict.detail,
        "parsable": attempt.parsable,
        "hit_token_limit": attempt.hit_token_limit,
        "cut_off_call": attempt.cut_off_call,
        "dropped_call": attempt.dropped_call,
        "left_out_arguments": attempt.left_out_arguments,
        "seconds": round(attempt.seconds, 4),
        "output_tokens": attempt.output_tokens,
        "calls": attempt.calls,
        "raw": attempt.raw,
    }


def run_bfcl(
    options: BfclOptions,
    *,
    chat: LocalChatModel | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every requested mode on every sampled item and return records plus a summary.

    Args:
        options: What to run.
        chat: An already loaded model (else ``load_chat(options)``).
        progress: Called as ``progress(done, total, label)`` after each item.

    Raises:
        BfclDataError: The data is missing or malformed.
        ModelLoadError: The model cannot be loaded.
    """
    sample = load_sample(options)
    chat = chat or load_chat(options)
    profile = profile_of_model(chat)
    rules = resolve_profile(profile, rules_of_model(chat))
    constrained = ConstrainedSettings.for_profile(
        profile, {"drop_invented_optional": rules.drop_invented_optional, **options.constrained}
    )
    total = len(options.modes) * sum(len(items) for items in sample.values())
    records: list[dict[str, Any]] = []
    for mode in options.modes:
        gate = options.tool_gate if mode in ("gated", "grounded") else None
        grounded = mode == "grounded"
        for category, items in sample.items():
            for item in items:
                attempt = _answer(
                    chat, item, mode, options, constrained, gate=gate, grounded=grounded
                )
                records.append(_record(item, mode, attempt, judge(item, attempt)))
                if progress:
                    progress(len(records), total, f"{mode} {category}")
    settings = {
        **asdict(options),
        "data": str(options.data),
        "sample_sizes": {category: len(items) for category, items in sample.items()},
        "profile": profile,
        "constrained_settings": asdict(constrained),
    }
    return {"options": settings, "summary": summarize(records), "items": records}


def write_outputs(result: dict[str, Any], out: Path, *, command: str) -> list[Path]:
    """Write the results JSON to ``out`` and, beside it, the plot (.png) and a markdown table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str) + "\n")
    title = _title(result)
    plot, markdown = out.with_suffix(".png"), out.with_suffix(".md")
    write_plot(result["summary"], plot, title=title)
    markdown.write_text(render_markdown(result["summary"], title=title, command=command))
    return [out, plot, markdown]


def _title(result: dict[str, Any]) -> str:
    options = result["options"]
    sizes = ", ".join(f"{c} {n}" for c, n in options["sample_sizes"].items())
    return f"BFCL ({sizes} items, seed {options['seed']}), model {options['model']}"


def stderr_progress(done: int, total: int, label: str) -> None:
    """Report ``done`` of ``total`` items on stderr: one updating line on a terminal."""
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r  item {done}/{total} ({label})".ljust(50), end=end, file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 20) == 0:
        print(f"  item {done}/{total} ({label})", file=sys.stderr, flush=True)


def parse_settings(text: str) -> dict[str, bool]:
    """Read ``name=on,name=off`` (also ``true``/``false``, ``1``/``0``) into settings.

    Raises:
        BfclDataError: A part that is not ``name=value`` with a yes/no value.
    """
    values = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    settings: dict[str, bool] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        if value.strip().lower() not in values:
            raise BfclDataError(f"{part!r}: write name=on or name=off")
        settings[name.strip()] = values[value.strip().lower()]
    return settings


def _split(values: str, name: str) -> tuple[str, ...]:
    parts = tuple(v.strip() for v in values.split(",") if v.strip())
    if not parts:
        raise BfclDataError(f"--{name} is empty")
    return parts


def _command_line(argv: Sequence[str]) -> str:
    """Return the command that reproduces this run, for the markdown table."""
    args = list(argv[1:])
    if "bfcl" in args:
        args = args[args.index("bfcl") + 1 :]
    return " ".join(["goalgraph eval bfcl", *args])


def _no_call_style(value: str) -> NoCallStyle:
    if value not in get_args(NoCallStyle):
        known = ", ".join(get_args(NoCallStyle))
        raise BfclDataError(f"unknown no-call style {value!r}; known: {known}")
    return cast(NoCallStyle, value)


def bfcl_command(
    data: Annotated[Path, typer.Option(help="BFCL data folder.")] = DEFAULT_DATA,
    categories: Annotated[
        str, typer.Option(help=f"Comma-separated categories of: {', '.join(CATEGORIES)}.")
    ] = ",".join(DEFAULT_CATEGORIES),
    modes: Annotated[str, typer.Option(help="Comma-separated modes.")] = ",".join(MODES),
    model: Annotated[
        str, typer.Option(help="smollm2 (bundled), a local model folder or a GGUF file.")
    ] = "smollm2",
    limit: Annotated[
        int | None, typer.Option(help="Items per category (fixed-seed sample); 0 for all.")
    ] = DEFAULT_LIMIT,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    quick: Annotated[
        bool, typer.Option(help=f"{QUICK_LIMIT} items per category: a smoke test.")
    ] = False,
    max_new_tokens: Annotated[
        int, typer.Option(help="Tokens per answer.")
    ] = DEFAULT_MAX_NEW_TOKENS,
    threads: Annotated[int, typer.Option(help="torch CPU threads (0: torch's default).")] = 1,
    no_call: Annotated[
        str, typer.Option(help="Constrained no-call style: decision, option or response.")
    ] = "decision",
    tool_gate: Annotated[
        float, typer.Option(help="Similarity threshold of the gated and grounded modes.")
    ] = DEFAULT_TOOL_GATE,
    out: Annotated[
        Path | None, typer.Option(help="Write results JSON here, plus .png and .md beside it.")
    ] = None,
    constrained: Annotated[
        str,
        typer.Option(
            help="Constrained-mode settings over the model profile's, e.g. prune_optional=off."
        ),
    ] = "",
    progress: Annotated[bool, typer.Option(help="Progress on stderr.")] = True,
) -> None:
    """Score the model's tool calls on BFCL per category: constrained, gated, grounded, plain."""
    from goalgraph.llm.loader import ModelLoadError

    try:
        options = BfclOptions(
            data=data,
            categories=_split(categories, "categories"),
            modes=_split(modes, "modes"),
            model=model,
            limit=QUICK_LIMIT if quick else (limit or None),
            seed=seed,
            max_new_tokens=max_new_tokens,
            threads=threads or None,
            no_call=_no_call_style(no_call),
            tool_gate=tool_gate,
            constrained=parse_settings(constrained),
        )
        result = run_bfcl(options, progress=stderr_progress if progress else None)
    except (BfclDataError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print("\n".join(render_table(result["summary"])))
    if out is not None:
        for path in write_outputs(result, out, command=_command_line(sys.argv)):
            print(f"wrote {path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``bfcl_command`` as a stand-alone program (for ``python -m goalgraph.eval.bfcl``)."""
    app = typer.Typer(add_completion=False)
    app.command()(bfcl_command)
    app(args=list(argv) if argv is not None else None)


if __name__ == "__main__":
    main()
