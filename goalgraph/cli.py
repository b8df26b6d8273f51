"""The ``goalgraph`` command line: run, resume, history, audit, tools, ingest, memory, mcp-server,
serve-model, serve, studio, eval and models."""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from goalgraph.agent import Agent, RunResult
from goalgraph.checkpoint import CheckpointError
from goalgraph.eval.cli import eval_app
from goalgraph.events import AgentEvent
from goalgraph.llm.models_cli import models_app
from goalgraph.spec import BUILTIN_SERVER, AgentSpec, SpecError
from goalgraph.tools.toolbox import ToolServerError

if TYPE_CHECKING:
    from goalgraph.memory.backend import MemoryBackend
    from goalgraph.memory.types import Fact, MemoryContext, StoredTurn

__all__ = ["app", "main"]

app = typer.Typer(
    name="goalgraph",
    help="An autonomous, goal-driven agent that plans, acts through MCP tools and checks itself.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False, highlight=False)
errors = Console(stderr=True, highlight=False)

EXIT_CODES = {"done": 0, "failed": 1, "stopped_limit": 3, "awaiting_approval": 4}
STYLES = {
    "plan": "bold cyan",
    "replan": "bold yellow",
    "thought": "dim",
    "tool_call": "magenta",
    "decision": "green",
    "verdict": "blue",
    "observation": "white",
    "step": "cyan",
    "approval": "bold yellow",
}

SpecOption = Annotated[
    Path | None, typer.Option("--spec", "-s", help="YAML agent spec.", exists=True, dir_okay=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only the result, as JSON.")]
TeamOption = Annotated[
    Path | None,
    typer.Option(
        "--team",
        help="YAML team spec (agents: and team:); a team of agents works on the goal instead.",
        exists=True,
        dir_okay=False,
    ),
]


def _agent_or_team(spec_path: Path | None, team: Path | None, overrides: dict[str, Any]) -> Agent:
    """Return the ``Team`` of ``team`` when given, else the ``Agent`` of ``spec_path``."""
    if team is None:
        return Agent(_load_spec(spec_path, overrides))
    if spec_path is not None:
        raise typer.BadParameter("pass either --spec or --team, not both")
    from goalgraph.teams import Team

    return Team(_load_spec(team, overrides))


def _load_spec(spec_path: Path | None, overrides: dict[str, Any]) -> AgentSpec:
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if spec_path is not None:
        return AgentSpec.from_yaml(spec_path, **overrides)
    return AgentSpec(**overrides)


def _show(event: AgentEvent) -> None:
    if event.kind == "end":
        return
    style = STYLES.get(event.kind, "")
    console.print(event.describe(), style=style, markup=False)


def _spec_args(spec_path: Path | None, team: Path | None) -> str:
    """Return the ``--spec``/``--team`` options that load the same agent again (for hints)."""
    if team is not None:
        return f" --team {shlex.quote(str(team))}"
    return f" --spec {shlex.quote(str(spec_path))}" if spec_path is not None else ""


def _finish(result: RunResult, as_json: bool, spec_args: str = "") -> None:
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        colour = "green" if result.status == "done" else "yellow"
        console.print(f"\nstatus: {result.status} - {result.message}", style=colour, markup=False)
        if result.answer is not None:
            console.print(f"answer: {result.answer}", style="bold", markup=False)
        if result.status == "awaiting_approval":
            console.print(
                f"approve with: goalgraph resume {result.thread_id}{spec_args} --approve  "
                f"(or --deny --reason '...')",
                markup=False,
            )
        console.print(f"thread: {result.thread_id}", style="dim", markup=False)
    raise typer.Exit(EXIT_CODES.get(result.status, 1))


def _drive(agent: Agent, events: Iterator[AgentEvent], as_json: bool) -> RunResult:
    """Show events; answer approval requests interactively when a terminal is attached."""
    while True:
        result: RunResult | None = None
        for event in events:
            if not as_json:
                _show(event)
            if event.kind == "end":
                result = event.result
        assert result is not None
        if result.status != "awaiting_approval" or as_json or not sys.stdin.isatty():
            return result
        approved = typer.confirm("Approve this tool call?", default=False)
        reason = (
            "" if approved else typer.prompt("Reason (optional)", default="", show_default=False)
        )
        events = agent.stream_resume(result.thread_id, approve=approved, reason=reason)


@app.command()
def run(
    goal: Annotated[str, typer.Argument(help="What the agent should achieve.")],
    spec: SpecOption = None,
    thread: Annotated[str | None, typer.Option(help="Thread id (default: a new one).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name, folder or GGUF file.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="Folder the file tools may use.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Most think iterations.")] = None,
    as_json: JsonOption = False,
    team: TeamOption = None,
) -> None:
    """Run the agent on GOAL, showing the plan, each thought, tool call, verdict and observation.

    With ``--team``, a team of agents works on GOAL; each line names the agent acting.
    """
    overrides: dict[str, Any] = {"workspace": workspace}
    if model:
        overrides["model"] = {"name": model}
    if max_steps is not None:
        overrides["limits"] = {"max_steps": max_steps}
    agent = _agent_or_team(spec, team, overrides)
    with agent:
        if not as_json:
            console.print(f"goal: {goal}", style="bold", markup=False)
        result = _drive(agent, agent.stream(goal, thread_id=thread), as_json)
    _finish(result, as_json, _spec_args(spec, team))


@app.command()
def resume(
    thread: Annotated[str, typer.Argument(help="The thread id to continue.")],
    approve: Annotated[
        bool | None, typer.Option("--approve/--deny", help="Decide a pending approval.")
    ] = None,
    reason: Annotated[str, typer.Option(help="A note for the agent with the decision.")] = "",
    spec: SpecOption = None,
    as_json: JsonOption = False,
    team: TeamOption = None,
) -> None:
    """Continue THREAD: decide its pending approval, or pick it up after a crash."""
    agent = _agent_or_team(spec, team, {})
    with agent:
        try:
            events = agent.stream_resume(thread, approve=approve, reason=reason)
            result = _drive(agent, events, as_json)
        except ValueError as exc:
            errors.print(f"error: {exc}", markup=False)
            raise typer.Exit(2) from None
    _finish(result, as_json, _spec_args(spec, team))


@app.command()
def history(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """List THREAD's checkpoints, newest first (ids for time travel with the Python API)."""
    with Agent(_load_spec(spec, {})) as agent:
        entries = agent.history(thread)
    if not entries:
        errors.print(f"error: no run with thread id {thread!r}", markup=False)
        raise typer.Exit(2)
    if as_json:
        print(json.dumps([entry.__dict__ for entry in entries], default=str))
        return
    for entry in entries:
        nxt = ",".join(entry.next) or "-"
        console.print(
            f"{entry.step:>3}  {entry.checkpoint_id}  {entry.node:<17} next={nxt:<17} "
            f"status={entry.status or '-'} step={entry.current_step}",
            markup=False,
        )


tools_app = typer.Typer(help="The tools the agent can use.", no_args_is_help=True)
app.add_typer(tools_app, name="tools")


@tools_app.command("list")
def tools_list(
    spec: SpecOption = None,
    workspace: Annotated[Path | None, typer.Option(help="Folder the file tools may use.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Start the configured MCP servers and list their tools with risk class and arguments."""
    import asyncio

    from goalgraph.tools.catalog import describe_tools

    try:
        entries = asyncio.run(describe_tools(_load_spec(spec, {"workspace": workspace})))
    except ToolServerError as exc:
        errors.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(entries, ensure_ascii=False))
        return
    for entry in entries:
        console.print(
            f"{entry['name']}  [{entry['risk']}, {entry['source']} output]  "
            f"(server {entry['server']})",
            style="bold",
            markup=False,
        )
        console.print(f"    {entry['description']}", markup=False)
        for line in entry["arguments"]:
            console.print(f"    - {line}", style="dim", markup=False)


@app.command()
def audit(
    thread: Annotated[str, typer.Argument(help="The thread id.")],
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show THREAD's audit log: every proposed action, its verdict and its result."""
    from goalgraph.audit import AuditLog

    log = AuditLog(_load_spec(spec, {}).safety.audit_dir)
    try:
        records = log.read(thread)
    except FileNotFoundError:
        errors.print(f"error: no audit records for thread {thread!r} in {log.folder}", markup=False)
        raise typer.Exit(2) from None
    except ValueError as exc:
        errors.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False, default=str))
        return
    for record in records:
        console.print(
            describe_audit_record(record),
            style=_AUDIT_STYLES.get(str(record.get("event")), ""),
            markup=False,
        )


_AUDIT_STYLES = {"verdict": "blue", "result": "white", "unreadable": "red"}


def describe_audit_record(record: dict[str, Any]) -> str:
    """Return one audit record as a line of text."""
    import datetime

    when = datetime.datetime.fromtimestamp(float(record.get("ts") or 0)).strftime("%H:%M:%S")
    event = record.get("event")
    if event == "verdict":
        args = json.dumps(record.get("args"), ensure_ascii=False, default=str)
        return (
            f"{when} {record.get('decision', '?'):<5} {record.get('tool')}({args}) "
            f"[{record.get('risk') or '?'}] by {record.get('by')}, {record.get('rule')}: "
            f"{record.get('reason')}"
        )
    if event == "result":
        outcome = "ok" if record.get("ok") else f"error: {record.get('error')}"
        flags = f" flags={','.join(record['flags'])}" if record.get("flags") else ""
        return (
            f"{when} result {record.get('tool')} {outcome} "
            f"({record.get('output_chars', 0)} chars, {record.get('elapsed_s', 0)} s){flags}"
        )
    return f"{when} {event}: {json.dumps(record, ensure_ascii=False, default=str)}"


@app.command("mcp-server")
def mcp_server(
    workspace: Annotated[Path | None, typer.Option(help="Folder the file tools may use.")] = None,
    transport: Annotated[str, typer.Option(help="stdio or streamable-http.")] = "stdio",
    port: Annotated[int, typer.Option(help="Port for streamable-http.")] = 8765,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            "-s",
            help="YAML agent spec: its workspace, tools (python, http) and memory settings.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            metavar="HOST[:PORT]",
            help="A host http_get may fetch: HOST on ports 80 and 443, HOST:PORT on that port "
            "(repeatable; adds to the spec's tools.http.allow_hosts). Without any, http_get "
            "refuses every URL.",
        ),
    ] = None,
    max_request_bytes: Annotated[
        int | None,
        typer.Option(help="Longest request read over stdio; longer ones are refused unread."),
    ] = None,
) -> None:
    """Serve goalgraph's own tools to any MCP client."""
    from goalgraph.tools.server import main as server_main

    argv = ["--transport", transport, "--port", str(port)]
    if spec is not None:
        # The flags AgentSpec.all_servers() starts goalgraph's server with, for this spec.
        agent = _load_spec(spec, {"workspace": workspace})
        agent = agent.model_copy(update={"builtin_tools": True, "mcp_servers": {}})
        argv += list(agent.all_servers()[BUILTIN_SERVER].args)[2:]  # after -m MODULE
    elif workspace is not None:
        argv += ["--workspace", str(workspace)]
    for host in allow_host or []:
        argv += ["--allow-host", host]
    if max_request_bytes is not None:
        argv += ["--max-request-bytes", str(max_request_bytes)]
    server_main(argv)


@app.command("serve-model")
def serve_model(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: Annotated[str, typer.Option(help="Model name, folder or GGUF file.")] = "smollm2",
    max_new_tokens: Annotated[int, typer.Option(help="Default token limit per reply.")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Serve a local model through an OpenAI-compatible HTTP API (/v1/chat/completions)."""
    from goalgraph.serve_model import main as serve_main

    argv = ["--host", host, "--port", str(port), "--model", model, "--device", device]
    serve_main([*argv, "--max-new-tokens", str(max_new_tokens)])


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key", help="A key /v1 routes accept (repeatable; also GOALGRAPH_API_KEYS)."
        ),
    ] = None,
    spec: SpecOption = None,
    team: TeamOption = None,
) -> None:
    """Serve the agent (or, with --team, a team of agents) as an HTTP task API (/v1/tasks) with
    approvals and event streams, and through LangServe (/agent)."""
    import os

    import uvicorn

    from goalgraph.serve import api_keys_from, create_app

    if spec is not None and team is not None:
        raise typer.BadParameter("pass either --spec or --team, not both")
    agent_spec = _load_spec(team or spec, {})
    if team is not None and not agent_spec.agents:
        raise typer.BadParameter(f"{team} declares no agents: a team spec needs 'agents:'")
    keys = api_keys_from(api_key, os.environ)
    if not keys and host not in ("127.0.0.1", "localhost", "::1"):
        errors.print(f"warning: serving on {host} without API keys", markup=False)
    app_ = create_app(lambda: _served(agent_spec, team=team is not None), api_keys=keys)
    uvicorn.run(app_, host=host, port=port, log_level="info")


def _served(spec: AgentSpec, *, team: bool) -> Agent:
    """Return the ``Team`` (``team``) or ``Agent`` that ``goalgraph serve`` serves."""
    if not team:
        return Agent(spec)
    from goalgraph.teams import Team

    return Team(spec)


@app.command()
def studio(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="TCP port (default: a free one).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="langgraph.json (default: ./langgraph.json or goalgraph's).")
    ] = None,
) -> None:
    """Run LangGraph Studio's dev server offline (no analytics, version check or tracing)."""
    import os

    from goalgraph.serve.studio import studio_command

    try:
        argv, env, chosen = studio_command(host=host, port=port, config=config)
    except FileNotFoundError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    errors.print(f"LangGraph dev server: http://{host}:{chosen} (Ctrl-C stops it)", markup=False)
    sys.stderr.flush()
    # Become the dev server, so that signals (Ctrl-C, a supervisor's SIGTERM) reach it directly.
    os.execve(argv[0], argv, env)


# Long-term memory: ingest documents, search, list and forget facts, the profile. ---------------


@contextlib.contextmanager
def _opened_memory(spec_path: Path | None) -> Iterator[MemoryBackend]:
    """Open the spec's memory backend and close it afterwards.

    Memory errors (unreadable or damaged database, unreachable server) print one line and exit 1;
    memory switched off (``memory.backend: none``) exits 2.
    """
    from goalgraph.memory.factory import open_memory
    from goalgraph.memory.types import MemoryBackendError

    spec = _load_spec(spec_path, {})
    try:
        memory = open_memory(spec.memory)
        if memory is None:
            errors.print(
                "error: memory is off (memory.backend is none)", markup=False, soft_wrap=True
            )
            raise typer.Exit(2)
        try:
            yield memory
        finally:
            memory.close()
    except MemoryBackendError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _summary_model(spec_path: Path | None) -> Any:
    """Return the spec's chat model for document summaries; a load failure exits 1."""
    spec = _load_spec(spec_path, {})
    try:
        if spec.model.provider == "openai":
            from goalgraph.llm.endpoint import endpoint_chat_model

            return endpoint_chat_model(spec.model)
        from goalgraph.llm import LocalChatModel

        return LocalChatModel.from_spec(spec.model)
    except Exception as exc:  # Loading touches files, network and torch: report, don't trace.
        errors.print(
            f"error: cannot load the model for summaries: {exc}", markup=False, soft_wrap=True
        )
        raise typer.Exit(1) from None


def _ingest_progress(enabled: bool) -> Progress:
    """Return a progress bar on stderr (chunks done / total), invisible when not ``enabled``."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not enabled,
    )


def _progress_task(bar: Progress, name: str) -> Callable[[int, int], None]:
    """Add a task named ``name`` to ``bar``; return the callback that moves it."""
    task = bar.add_task(name, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Text (.txt), markdown or PDF files.")],
    spec: SpecOption = None,
    chunk_tokens: Annotated[
        int, typer.Option("--chunk-tokens", min=10, help="Most tokens per chunk.")
    ] = 200,
    model_summaries: Annotated[
        bool,
        typer.Option(
            "--model-summaries",
            help="Summarise with the spec's model (slower) instead of extractively.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Store documents in long-term memory: chunks with page/section provenance, plus summaries.

    Each file becomes session doc:<name>; ingesting a file again replaces it. Exits 2 when a file
    cannot be read (the others are still ingested), 1 when memory cannot be written.
    """
    from goalgraph.memory.ingest import (
        IngestError,
        extractive_summary,
        ingest_document,
        model_summarizer,
    )

    summarize = model_summarizer(_summary_model(spec)) if model_summaries else extractive_summary
    unreadable = 0
    with _opened_memory(spec) as memory:
        for file in files:
            try:
                with _ingest_progress(errors.is_terminal) as bar:
                    report = ingest_document(
                        file,
                        memory,
                        summarize=summarize,
                        chunk_tokens=chunk_tokens,
                        progress=_progress_task(bar, file.name),
                    )
            except IngestError as exc:
                errors.print(f"error: {exc}", markup=False, soft_wrap=True)
                unreadable += 1
                continue
            if as_json:
                print(json.dumps(report.to_dict(), ensure_ascii=False))
            else:
                console.print(report.describe(), markup=False, soft_wrap=True)
    if unreadable:
        raise typer.Exit(2)


memory_app = typer.Typer(
    help="Long-term memory: search it, list and forget facts, read or set the profile.",
    no_args_is_help=True,
)
app.add_typer(memory_app, name="memory")

app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def fact_to_dict(fact: Fact) -> dict[str, Any]:
    """Return a fact as JSON-ready data, with its validity span and whether it holds now."""
    from goalgraph.memory.types import utcnow

    return {
        "id": fact.id,
        "subject": fact.subject,
        "predicate": fact.predicate,
        "object": fact.object,
        "text": fact.text,
        "valid_at": _iso(fact.valid_at),
        "invalid_at": _iso(fact.invalid_at),
        "holds_now": fact.holds_at(utcnow()),
        "superseded_by": fact.superseded_by,
        "created_at": _iso(fact.created_at),
        "expires_at": _iso(fact.expires_at),
        "sources": list(fact.sources),
    }


def turn_to_dict(turn: StoredTurn) -> dict[str, Any]:
    """Return a stored turn as JSON-ready data; ``place`` decodes a document chunk's id."""
    from goalgraph.memory.ingest import chunk_place

    return {
        "id": turn.id,
        "session_id": turn.session_id,
        "speaker": turn.speaker,
        "text": turn.text,
        "at": _iso(turn.at),
        "score": turn.score,
        "place": chunk_place(turn.id),
    }


def describe_fact(fact: Fact) -> str:
    """Return a fact as a line: id, sentence, validity span, superseded marker and sources."""
    start = f"{fact.valid_at:%Y-%m-%d}" if fact.valid_at else "?"
    end = f"{fact.invalid_at:%Y-%m-%d}" if fact.invalid_at else "now"
    marker = f"  [superseded by {fact.superseded_by}]" if fact.superseded_by else ""
    if fact.invalid_at and not marker:
        marker = "  [no longer holds]"
    sources = f"  from {', '.join(fact.sources)}" if fact.sources else ""
    return f"{fact.id}  {fact.text}  ({start} to {end}){marker}{sources}"


def describe_context(context: MemoryContext) -> str:
    """Return a search result as text: facts with validity, then turns with their ids by session."""
    from goalgraph.memory.ingest import chunk_place

    lines: list[str] = []
    if context.facts:
        lines.append("Facts:")
        lines.extend(f"- {describe_fact(fact)}" for fact in context.facts)
    if context.turns:
        lines.append("Turns:" if not lines else "\nTurns:")
        session = None
        for turn in sorted(context.turns, key=lambda t: (t.session_id, t.at, t.id)):
            if turn.session_id != session:
                session = turn.session_id
                lines.append(f"[{turn.session_id}, {turn.at:%d %B %Y}]")
            place = chunk_place(turn.id)
            where = f" ({', '.join(f'{k} {v}' for k, v in place.items())})" if place else ""
            lines.append(f"  {turn.id}{where}  {turn.speaker}: {turn.text}")
    return "\n".join(lines)


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="A question or a goal.")],
    budget: Annotated[
        int, typer.Option("--budget", min=16, help="Most tokens the context may cost.")
    ] = 512,
    session: Annotated[str | None, typer.Option(help="Search only this session.")] = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what memory recalls for QUERY: facts and turns, each with its provenance."""
    with _opened_memory(spec) as memory:
        context = memory.search(query, budget_tokens=budget, session_id=session)
    if as_json:
        data = {
            "query": query,
            "tokens": context.tokens,
            "facts": [fact_to_dict(fact) for fact in context.facts],
            "turns": [turn_to_dict(turn) for turn in context.turns],
            "rendered": context.render(),
        }
        print(json.dumps(data, ensure_ascii=False))
    elif context:
        console.print(describe_context(context), markup=False, soft_wrap=True)
    else:
        errors.print(f"nothing in memory matches {query!r}", markup=False, soft_wrap=True)


@memory_app.command("facts")
def memory_facts(
    subject: Annotated[str | None, typer.Option(help="Only facts about this entity.")] = None,
    include_invalid: Annotated[
        bool, typer.Option("--all", help="Include facts that no longer hold.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Most facts listed.")] = 100,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """List facts, newest first, with their validity span (and, with --all, superseded ones)."""
    with _opened_memory(spec) as memory:
        found = memory.facts(subject=subject, include_invalid=include_invalid, limit=limit)
    if as_json:
        print(json.dumps([fact_to_dict(fact) for fact in found], ensure_ascii=False))
        return
    if not found:
        errors.print(
            "no facts" + (f" about {subject!r}" if subject else ""), markup=False, soft_wrap=True
        )
    for fact in found:
        console.print(
            describe_fact(fact),
            style="dim" if fact.invalid_at else "",
            markup=False,
            soft_wrap=True,
        )


@memory_app.command("forget")
def memory_forget(
    fact: Annotated[str | None, typer.Option("--fact", help="A fact id.")] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="A session, e.g. doc:report.")
    ] = None,
    entity: Annotated[
        str | None, typer.Option("--entity", help="Every fact about this entity.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a fact, a whole session (turns and the facts learned only from them) or an entity."""
    chosen = {
        name: value
        for name, value in (("fact", fact), ("session", session), ("entity", entity))
        if value
    }
    if len(chosen) != 1:
        errors.print(
            "error: give exactly one of --fact, --session or --entity", markup=False, soft_wrap=True
        )
        raise typer.Exit(2)
    ((kind, value),) = chosen.items()
    if not yes:
        try:
            confirmed = typer.confirm(f"Forget {kind} {value!r}?", default=False)
        except typer.Abort:  # No answer (end of input).
            console.print()
            confirmed = False
        if not confirmed:
            errors.print("nothing forgotten", markup=False, soft_wrap=True)
            raise typer.Exit(1)
    with _opened_memory(spec) as memory:
        removed = memory.forget(fact_id=fact, session_id=session, entity=entity)
    if as_json:
        print(json.dumps({"removed": removed, kind: value}, ensure_ascii=False))
    else:
        console.print(
            f"forgot {removed} record{'s' * (removed != 1)} ({kind} {value})", markup=False
        )


@memory_app.command("profile")
def memory_profile(
    key: Annotated[str | None, typer.Argument(help="The entry to read or set.")] = None,
    value: Annotated[
        str | None, typer.Argument(help="Its new value; an empty string removes it.")
    ] = None,
    user: Annotated[str, typer.Option(help="Whose profile.")] = "default",
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the profile, one entry (KEY) or set one (KEY VALUE)."""
    with _opened_memory(spec) as memory:
        if key is not None and value is not None:
            memory.set_profile(key, value, user_id=user)
        profile = memory.get_profile(user)
    if key is not None and value is not None:
        if as_json:
            print(json.dumps({key: value or None}, ensure_ascii=False))
        else:
            console.print(
                f"set {key} = {value}" if value else f"removed {key}", markup=False, soft_wrap=True
            )
        return
    if key is not None:
        if key not in profile:
            errors.print(f"error: no profile entry {key!r}", markup=False, soft_wrap=True)
            raise typer.Exit(2)
        print(json.dumps({key: profile[key]}, ensure_ascii=False) if as_json else profile[key])
        return
    if as_json:
        print(json.dumps(profile, ensure_ascii=False))
        return
    if not profile:
        errors.print("the profile is empty", markup=False, soft_wrap=True)
    for name, entry in sorted(profile.items()):
        console.print(f"{name}: {entry}", markup=False, soft_wrap=True)


def main() -> None:
    """Run the CLI, turning configuration errors into one clear line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except (SpecError, CheckpointError) as exc:
        errors.print(f"error: {exc}", markup=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
