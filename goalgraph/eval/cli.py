"""``goalgraph eval``: the command group that runs the evaluations.

Each evaluation module defines its own typer command; this module only gathers them, so that
``goalgraph --help`` stays fast (commands import torch and the model lazily, when they run).
"""

from __future__ import annotations

import typer

from goalgraph.eval.bfcl import bfcl_command
from goalgraph.eval.tasks import tasks_command

__all__ = ["eval_app"]

eval_app = typer.Typer(
    help="Measure the model and the agent: BFCL tool calling and the agent task suite.",
    no_args_is_help=True,
)
eval_app.command("bfcl")(bfcl_command)
eval_app.command("tasks")(tasks_command)
