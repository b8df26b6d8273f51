"""Local model runtime: what the prefix KV cache and the generation cache save.

What is measured
----------------
An agent step sends a long static system turn (instructions plus the tool list the chat model
injects) and a short varying tail. The benchmark builds such a step with the bundled model
(SmolLM2-135M, fp32 on CPU): about 1,500 prompt tokens of instructions and twelve tools bound with
``tool_choice="any"``, so the reply is decoded under the xgrammar tool-call grammar. One run is
one ``invoke`` with ``max_new_tokens=1``: its wall time is the time to the first token, almost all
of it prefill. Each repetition times the same step

* without the cache (``prefix_cache=False``: the whole prompt is encoded), and
* with it, warm (the system turn's KV cache is copied and only the tail is encoded),

in alternating order, with a new user question each repetition (the tail varies, the prefix does
not). The one-off cost of encoding the prefix (the first, missing call) is reported too. The
ratio is the median without over the median with.

The second table runs the planner (``with_structured_output`` under the plan schema, prompts built
by ``goalgraph.nodes.plan.plan_messages``) through a fresh ``GenerationCache`` on a workload of new
goals, exact repeats and paraphrases that keep their numbers and file names. It reports the wall
time of a miss (generation), an exact hit and a semantic hit, the cache's own exact lookup, and the
hit ratio. The third table compares precision and thread options against fp32: prefill tokens/s on
1,000 tokens, greedy decode tokens/s on 32, and how many of the 32 greedy tokens match fp32's.
MiniLM similarities of the paraphrases against the originals: "What is the value of
12*(3+4)?" 0.89, "Read notes.txt" 0.90 (looser ones, "Compute 12*(3+4) please" 0.84 and "Please
read notes.txt" 0.77, miss at the default threshold of 0.85).

With ``--ladder`` it measures the ladder models instead (``goalgraph models list``): prefill and
decode tokens/s in float32 and bfloat16 with 1 and 2 threads, bfloat16's greedy agreement with
float32, and the settings ``dtype: auto`` should pick (``benchmarks/_ladder_runs.py``); the table
goes to ``benchmarks/results/model_ladder.md``, the raw figures and greedy outputs to
``model_ladder.json`` beside it.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/llm_runtime.py            # 5 repetitions, 2 threads
    .venv/bin/python benchmarks/llm_runtime.py --quick    # 2 repetitions
    .venv/bin/python benchmarks/llm_runtime.py --ladder   # every installed ladder model
    .venv/bin/python benchmarks/llm_runtime.py --ladder qwen2.5-coder-0.5b
    .venv/bin/python benchmarks/llm_runtime.py --ladder-report   # the table from its JSON
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from goalgraph.llm import LocalChatModel
from goalgraph.llm.prefix_cache import prompt_prefix
from goalgraph.spec import BUNDLED_MODEL, CacheSpec, ModelSpec

QUESTIONS = [
    "What is 17 * 23?",
    "Open the file notes.txt and summarise it.",
    "Find recent news about the Mars rover.",
    "How many days are there in a leap year?",
    "List the files in the docs folder.",
    "Convert 12 miles to kilometres.",
    "Who wrote the novel Dune?",
]

_TOPICS = [
    ("calculator", "Evaluate an arithmetic expression such as 2+2.", "expression"),
    ("read_file", "Read a text file from the workspace.", "path"),
    ("write_file", "Write text to a file in the workspace, replacing it.", "path"),
    ("list_dir", "List the files and folders inside a workspace folder.", "path"),
    ("web_search", "Search the web for pages about a topic.", "query"),
    ("fetch_url", "Download a web page and return its readable text.", "url"),
    ("unit_convert", "Convert a quantity between units, e.g. '12 mi to km'.", "quantity"),
    ("calendar", "Look up dates, weekdays and the number of days between dates.", "question"),
    ("python", "Run a short Python snippet in a sandbox and return its output.", "code"),
    ("memory_recall", "Search the agent's long-term memory for related notes.", "query"),
    ("memory_store", "Store a short fact in the agent's long-term memory.", "fact"),
    ("ask_user", "Ask the user a clarifying question and wait for the answer.", "question"),
]

_RULES = [
    "Read the goal carefully and restate it to yourself before acting.",
    "Prefer a tool over guessing whenever a tool can answer the question.",
    "Never invent file contents, web results, numbers or quotations.",
    "Call exactly one tool per step and wait for its observation.",
    "If an observation reports an error, change the arguments before retrying.",
    "Keep thoughts to one short sentence that says why the tool helps.",
    "When the goal is reached, answer directly and stop calling tools.",
    "Do not repeat a tool call with the same arguments twice in a row.",
    "Respect the workspace: never write outside it and never delete files.",
    "Ask the user only when the goal is ambiguous and no tool can resolve it.",
]


def agent_system_prompt(tokenizer: Any, target_tokens: int) -> str:
    """Return agent instructions of about ``target_tokens`` tokens (the tools come on top)."""
    lines = [
        "You are goalgraph, an autonomous agent that reaches the user's goal step by step.",
        "Each step you choose one tool, or you answer when the goal is reached.",
        "Guidelines:",
    ]
    section = 0
    while len(tokenizer("\n".join(lines))["input_ids"]) < target_tokens:
        section += 1
        for number, rule in enumerate(_RULES, 1):
            lines.append(f"{section}.{number} {rule}")
            if len(tokenizer("\n".join(lines))["input_ids"]) >= target_tokens:
                break
    return "\n".join(lines)


def agent_tools() -> list[dict[str, Any]]:
    """Return twelve OpenAI-format tools, each with one bounded string argument."""
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": {
                        argument: {
                            "type": "string",
                            "maxLength": 60,
                            "description": f"the {argument} to use",
                        }
                    },
                    "required": [argument],
                },
            },
        }
        for name, description, argument in _TOPICS
    ]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _time_step(bound: Any, system: str, question: str) -> float:
    started = time.perf_counter()
    bound.invoke([SystemMessage(system), HumanMessage(question)], max_new_tokens=1)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repetitions instead of 5")
    parser.add_argument("--runs", type=int, default=None, help="timed repetitions per variant")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--prefix-tokens", type=int, default=1500, help="static prefix length to aim for"
    )
    parser.add_argument(
        "--no-generation-cache", action="store_true", help="skip the generation-cache section"
    )
    parser.add_argument("--no-precision", action="store_true", help="skip the precision section")
    parser.add_argument(
        "--no-compile", action="store_true", help="skip torch.compile (about a minute to compile)"
    )
    parser.add_argument(
        "--no-agent", action="store_true", help="skip whole agent runs (precision agreement, demo)"
    )
    parser.add_argument(
        "--ladder",
        nargs="*",
        metavar="NAME",
        default=None,
        help="measure these ladder models (none named: every installed one) and write "
        "benchmarks/results/model_ladder.md; the other sections are skipped",
    )
    parser.add_argument(
        "--new-tokens", type=int, default=64, help="greedy tokens per prompt with --ladder"
    )
    parser.add_argument(
        "--ladder-report",
        action="store_true",
        help="rewrite the --ladder table from its JSON (model_ladder.json) without measuring",
    )
    parser.add_argument(
        "--ladder-output",
        type=Path,
        default=Path(__file__).parent / "results" / "model_ladder.md",
        help="where --ladder writes its table",
    )
    args = parser.parse_args(argv)
    if args.ladder_report:
        return ladder_report(args.ladder_output)
    if args.ladder is not None:
        return ladder_main(args.ladder, new_tokens=args.new_tokens, output=args.ladder_output)
    runs = args.runs or (2 if args.quick else 5)

    _progress(f"loading the bundled model ({args.threads} threads) ...")
    # The generation cache would answer the repeated steps without the model: off here.
    spec = ModelSpec(
        name=BUNDLED_MODEL, max_new_tokens=1, threads=args.threads, cache=CacheSpec(enabled=False)
    )
    chat = LocalChatModel.from_spec(spec)
    plain = chat.model_copy(update={"prefix_cache": False})
    tools = agent_tools()
    _progress("compiling the tool-call grammar ...")
    bound = {
        True: chat.bind_tools(tools, tool_choice="any"),
        False: plain.bind_tools(tools, tool_choice="any"),
    }
    # The tool list and its reply format are added to the system turn: aim the whole at ~target.
    tool_block_tokens = len(chat.tokenizer(_tool_block(chat, tools))["input_ids"])
    system = agent_system_prompt(chat.tokenizer, max(args.prefix_tokens - tool_block_tokens, 50))
    prompt = _rendered(chat, system, tools, QUESTIONS[0])
    prefix_tokens = len(chat.tokenizer(prompt_prefix(prompt) or "")["input_ids"])
    total_tokens = len(chat.tokenizer(prompt)["input_ids"])
    _progress(f"static prefix {prefix_tokens} tokens, whole prompt {total_tokens} tokens")

    _progress("warm-up (no cache) ...")
    _time_step(bound[False], system, QUESTIONS[-1])
    stats = chat.prefix_cache_stats
    misses = stats.misses
    _progress("building the prefix cache (first call with it) ...")
    build = _time_step(bound[True], system, QUESTIONS[-2])
    assert stats.misses == misses + 1, "the first cached call should have encoded the prefix"

    timings: dict[bool, list[float]] = {False: [], True: []}
    for repetition in range(runs):
        question = QUESTIONS[repetition % (len(QUESTIONS) - 2)]
        order = (False, True) if repetition % 2 == 0 else (True, False)
        for cached in order:
            timings[cached].append(_time_step(bound[cached], system, question))
        _progress(
            f"repetition {repetition + 1}/{runs}: without {timings[False][-1]:.3f} s, "
            f"with {timings[True][-1]:.3f} s"
        )
    hits = stats.hits

    without = statistics.median(timings[False])
    with_cache = statistics.median(timings[True])
    print(
        f"Agent step, 1-token generation under the tool-call grammar "
        f"(SmolLM2-135M fp32, {args.threads} threads, {platform.machine()}, "
        f"prefix {prefix_tokens} of {total_tokens} prompt tokens, median of {runs})"
    )
    print(f"{'variant':<28}{'median s':>10}{'min s':>9}{'max s':>9}")
    for label, values in (
        ("without prefix cache", timings[False]),
        ("with prefix cache (hit)", timings[True]),
    ):
        print(
            f"{label:<28}{statistics.median(values):>10.3f}{min(values):>9.3f}{max(values):>9.3f}"
        )
    print(f"{'first call (builds cache)':<28}{build:>10.3f}")
    print(f"speed-up (median without / with): {without / with_cache:.1f}x (cache hits: {hits})")
    if not args.no_generation_cache:
        print()
        generation_cache_section(chat)
    if not args.no_precision:
        print()
        precision_section(chat, system, compile_model=not args.no_compile)
    if not args.no_agent:
        from _agent_runs import (
            demo_wall_times,
            precision_agreement,
            print_agreement_table,
            print_demo_table,
        )

        print()
        print_agreement_table(precision_agreement(["float32", "bfloat16"]))
        print()
        print_demo_table(demo_wall_times(runs=2 if args.quick else 3))
    return 0


def ladder_main(names: list[str], *, new_tokens: int, output: Path) -> int:
    """Measure the ladder models ``names`` (every installed one when empty); write the table."""
    from _ladder_runs import measure_model, save_runs, write_report

    from goalgraph.llm.install import list_models

    states = {status.entry.name: status.state for status in list_models()}
    unknown = sorted(set(names) - set(states))
    if unknown:
        print(f"error: not ladder models: {', '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = names or [name for name, state in states.items() if state != "missing"]
    missing = [name for name in chosen if states[name] == "missing"]
    if missing:
        print(
            f"error: not installed: {', '.join(missing)} (goalgraph models install)",
            file=sys.stderr,
        )
        return 2
    load_before = os.getloadavg()[0]
    runs = [
        measure_model(name, prefill_text=agent_system_prompt, new_tokens=new_tokens)
        for name in chosen
    ]
    loads = (load_before, os.getloadavg()[0])
    save_runs(runs, output.with_suffix(".json"), loads=loads, new_tokens=new_tokens)
    print(write_report(runs, output, loads=loads, new_tokens=new_tokens))
    _progress(f"wrote {output} and {output.with_suffix('.json').name}")
    return 0


def ladder_report(output: Path) -> int:
    """Rewrite the ``--ladder`` table from the JSON beside it (e.g. after a ladder change)."""
    from _ladder_runs import load_runs, write_report

    runs, loads, new_tokens = load_runs(output.with_suffix(".json"))
    print(write_report(runs, output, loads=loads, new_tokens=new_tokens))
    _progress(f"wrote {output}")
    return 0


def precision_section(
    chat: LocalChatModel, system: str, *, new_tokens: int = 32, compile_model: bool = True
) -> None:
    """Compare prefill and decode speed of precision and thread options against fp32."""
    import copy

    import torch

    model, tokenizer = chat.hf_model, chat.tokenizer
    long_ids = tokenizer(system, return_tensors="pt")["input_ids"][:, :1000]
    short = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write one sentence about the sea."}],
        tokenize=False,
        add_generation_prompt=True,
    )
    short_ids = tokenizer(short, return_tensors="pt")["input_ids"]

    def measure(
        candidate: Any, threads: int, generate: dict[str, Any]
    ) -> tuple[float, float, list[int]]:
        torch.set_num_threads(threads)
        with torch.no_grad():
            candidate(long_ids[:, :50])  # warm-up
            # A short generation first, so that torch.compile compiles outside the timing.
            candidate.generate(
                short_ids,
                attention_mask=torch.ones_like(short_ids),
                max_new_tokens=4,
                do_sample=False,
                **generate,
            )
            started = time.perf_counter()
            candidate(long_ids)
            prefill = long_ids.shape[1] / (time.perf_counter() - started)
            started = time.perf_counter()
            out = candidate.generate(
                short_ids,
                attention_mask=torch.ones_like(short_ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                **generate,
            )
            decode = new_tokens / (time.perf_counter() - started)
        return prefill, decode, out[0, short_ids.shape[1] :].tolist()

    threads_default = torch.get_num_threads()
    static = {"cache_implementation": "static"}
    variants: list[tuple[str, Any, int, dict[str, Any]]] = [
        (f"fp32, {threads_default} threads (default)", lambda: model, threads_default, {}),
        ("fp32, 1 thread", lambda: model, 1, {}),
        ("fp32, static KV cache", lambda: model, threads_default, static),
        ("bf16", lambda: copy.deepcopy(model).to(torch.bfloat16), threads_default, {}),
        (
            "int8 dynamic (Linear)",
            lambda: torch.ao.quantization.quantize_dynamic(
                copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
            ),
            threads_default,
            {},
        ),
    ]
    if compile_model:
        variants.append(
            ("fp32, static cache, torch.compile", lambda: _compiled(model), threads_default, static)
        )
    rows = []
    reference: list[int] | None = None
    for label, build, threads, generate in variants:
        _progress(f"precision: {label} ...")
        started = time.perf_counter()
        prefill, decode, tokens = measure(build(), threads, generate)
        setup = time.perf_counter() - started
        reference = tokens if reference is None else reference
        same = sum(1 for a, b in zip(tokens, reference, strict=True) if a == b)
        rows.append((label, prefill, decode, same, setup))
    torch.set_num_threads(threads_default)
    base_decode = rows[0][2]
    print(
        f"Precision and threads (prefill of {long_ids.shape[1]} tokens; "
        f"greedy decode of {new_tokens})"
    )
    header = f"{'option':<36}{'prefill tok/s':>14}{'decode tok/s':>14}{'vs fp32':>9}"
    print(f"{header}{'same tokens':>13}{'setup+run s':>13}")
    for label, prefill, decode, same, setup in rows:
        print(
            f"{label:<36}{prefill:>14.0f}{decode:>14.1f}{decode / base_decode:>8.2f}x"
            f"{f'{same}/{new_tokens}':>13}{setup:>13.1f}"
        )


def _compiled(model: Any) -> Any:
    """Return a copy of ``model`` whose forward goes through ``torch.compile`` (inductor)."""
    import copy

    import torch

    compiled = copy.deepcopy(model)
    compiled.forward = torch.compile(compiled.forward, mode="reduce-overhead")
    return compiled


# A planner workload: new goals, exact repeats and paraphrases with the same literals.
WORKLOAD = [
    "What is 12*(3+4)?",
    "Read the file notes.txt",
    "What is 12*(3+4)?",
    "What is the value of 12*(3+4)?",
    "What is 12*(3+5)?",
    "Read the file notes.txt",
    "Read notes.txt",
    "List the files in the workspace",
    "What is 12*(3+4)?",
    "Write hello to greeting.txt",
    "Write hello to greeting.txt",
    "List the files in the workspace",
]


def generation_cache_section(chat: LocalChatModel) -> None:
    """Time planner calls through the generation cache: misses, exact and semantic hits."""
    import tempfile

    from langchain_core.tools import StructuredTool

    from goalgraph.llm.cache import GenerationCache
    from goalgraph.nodes.plan import plan_messages
    from goalgraph.plan import plan_schema

    def stub(name: str, description: str, **params: str) -> StructuredTool:
        def run(**_: Any) -> str:
            return ""

        schema = {
            "type": "object",
            "properties": {key: {"type": "string"} for key in params},
            "required": list(params),
        }
        return StructuredTool(name=name, description=description, args_schema=schema, func=run)

    tools = [
        stub("calculator", "Evaluate an arithmetic expression like 12*(3+4).", expression=""),
        stub("read_file", "Read a text file from the workspace.", path=""),
        stub("list_files", "List files and folders in a workspace folder.", path=""),
        stub("write_file", "Write text to a file in the workspace.", path="", content=""),
    ]
    names = [tool.name for tool in tools]
    with tempfile.TemporaryDirectory() as folder:
        cache = GenerationCache(CacheSpec(), path=folder)
        cached = chat.model_copy(update={"generation_cache": cache, "max_new_tokens": 160})
        planner = cached.with_structured_output(plan_schema(names), include_raw=True)
        rows: dict[str, list[float]] = {"miss": [], "exact": [], "semantic": []}
        for index, goal in enumerate(WORKLOAD, 1):
            started = time.perf_counter()
            reply = planner.invoke(plan_messages(goal, tools))
            elapsed = time.perf_counter() - started
            tier = reply["raw"].response_metadata.get("cache") or "miss"
            rows[tier].append(elapsed)
            _progress(f"planner call {index}/{len(WORKLOAD)}: {tier} in {elapsed * 1000:.1f} ms")
        lookups = _exact_lookup_times(cache, cached, plan_schema(names), tools)
        model_hits = _exact_model_call_times(cached, plan_schema(names), tools)
        stats = cache.stats
        cache.close()
    print(
        f"Generation cache (GPTCache; exact tier, then MiniLM semantic tier) on a planner "
        f"workload of {len(WORKLOAD)} goals: repeats, paraphrases, new goals"
    )
    print(f"{'outcome':<28}{'calls':>6}{'median ms':>11}")
    for tier, values in rows.items():
        median = f"{statistics.median(values) * 1000:.1f}" if values else "-"
        print(f"{tier + ' (whole call)':<28}{len(values):>6}{median:>11}")
    print(
        f"{'exact, chat-model call':<28}{len(model_hits):>6}"
        f"{statistics.median(model_hits) * 1000:>11.2f}"
    )
    print(f"{'exact lookup only':<28}{len(lookups):>6}{statistics.median(lookups) * 1000:>11.3f}")
    exact, semantic = len(rows["exact"]), len(rows["semantic"])
    print(
        f"hit ratio: {exact + semantic}/{len(WORKLOAD)} = {(exact + semantic) / len(WORKLOAD):.0%}"
        f" ({exact} exact, {semantic} semantic; {stats.misses} misses in all lookups)"
    )
    if rows["exact"] and rows["miss"]:
        ratio = statistics.median(rows["miss"]) / statistics.median(rows["exact"])
        print(f"a miss (generation) takes {ratio:.0f}x as long as an exact hit")


def _exact_lookup_times(
    cache: Any, chat: LocalChatModel, schema: dict[str, Any], tools: Any
) -> list[float]:
    """Time the cache's own exact lookup (no model, no prompt rendering) of a cached plan."""
    from goalgraph.nodes.plan import plan_messages

    messages = plan_messages(WORKLOAD[0], tools)
    call = chat._prepare(messages, None, {"response_format": schema})
    request = chat._cache_request(call, messages)
    assert request is not None
    times = []
    for _ in range(200):
        started = time.perf_counter()
        hit = cache.lookup(request)
        times.append(time.perf_counter() - started)
        assert hit is not None, "the first workload goal should be cached"
    return times


def _exact_model_call_times(
    chat: LocalChatModel, schema: dict[str, Any], tools: Any
) -> list[float]:
    """Time a cached plan through the chat model alone (``invoke`` under the plan schema).

    The planner's whole call adds LangChain's ``with_structured_output(include_raw=True)``
    runnables (a parallel map and a parser fallback) on top of this.
    """
    from goalgraph.nodes.plan import plan_messages

    bound = chat.bind(response_format=schema)
    messages = plan_messages(WORKLOAD[0], tools)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        reply = bound.invoke(messages)
        times.append(time.perf_counter() - started)
        assert reply.response_metadata.get("cache") == "exact"
    return times


def _tool_block(chat: LocalChatModel, tools: list[dict[str, Any]]) -> str:
    from goalgraph.llm.chat import tools_instruction

    return tools_instruction(tools, "any", thought=chat.thought)


def _rendered(chat: LocalChatModel, system: str, tools: list[dict[str, Any]], question: str) -> str:
    turns = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return chat._render(turns, _tool_block(chat, tools))


if __name__ == "__main__":
    sys.exit(main())
