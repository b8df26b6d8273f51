"""The ``goalgraph`` command line: run, resume, history, audit, tools, mcp-server, serve-model."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from goalgraph.agent import Agent, RunResult
from goalgraph.checkpoint import CheckpointError
from goalgraph.events import AgentEvent
from goalgraph.spec import AgentSpec, SpecError
from goalgraph.tools.toolbox import ToolServerError

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


def _finish(result: RunResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        colour = "green" if result.status == "done" else "yellow"
        console.print(f"\nstatus: {result.status} - {result.message}", style=colour, markup=False)
        if result.answer is not None:
            console.print(f"answer: {result.answer}", style="bold", markup=False)
        if result.status == "awaiting_approval":
            console.print(
                f"approve with: goalgraph resume {result.thread_id} --approve  "
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
) -> None:
    """Run the agent on GOAL, showing the plan, each thought, tool call, verdict and observation."""
    overrides: dict[str, Any] = {"workspace": workspace}
    if model:
        overrides["model"] = {"name": model}
    if max_steps is not None:
        overrides["limits"] = {"max_steps": max_steps}
    agent = Agent(_load_spec(spec, overrides))
    with agent:
        if not as_json:
            console.print(f"goal: {goal}", style="bold", markup=False)
        result = _drive(agent, agent.stream(goal, thread_id=thread), as_json)
    _finish(result, as_json)


@app.command()
def resume(
    thread: Annotated[str, typer.Argument(help="The thread id to continue.")],
    approve: Annotated[
        bool | None, typer.Option("--approve/--deny", help="Decide a pending approval.")
    ] = None,
    reason: Annotated[str, typer.Option(help="A note for the agent with the decision.")] = "",
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue THREAD: decide its pending approval, or pick it up after a crash."""
    agent = Agent(_load_spec(spec, {}))
    with agent:
        try:
            events = agent.stream_resume(thread, approve=approve, reason=reason)
            result = _drive(agent, events, as_json)
        except ValueError as exc:
            errors.print(f"error: {exc}", markup=False)
            raise typer.Exit(2) from None
    _finish(result, as_json)


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
            f"{entry['name']}  [{entry['risk']}]  (server {entry['server']})",
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
) -> None:
    """Serve goalgraph's own tools to any MCP client."""
    from goalgraph.tools.server import main as server_main

    argv = ["--transport", transport, "--port", str(port)]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
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
