"""The resume hint printed when a CLI run pauses for approval loads the same agent or team."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from goalgraph import cli
from goalgraph.agent import RunResult


@pytest.mark.parametrize(
    ("spec", "team", "expected"),
    [
        (None, None, "goalgraph resume t1 --approve"),
        (Path("my agent.yaml"), None, "goalgraph resume t1 --spec 'my agent.yaml' --approve"),
        (None, Path("team.yaml"), "goalgraph resume t1 --team team.yaml --approve"),
    ],
)
def test_the_approval_hint_names_the_spec_or_team_the_run_used(capsys, spec, team, expected):
    paused = RunResult(thread_id="t1", status="awaiting_approval", message="needs a human")
    with pytest.raises(typer.Exit):
        cli._finish(paused, False, cli._spec_args(spec, team))
    assert expected in " ".join(capsys.readouterr().out.split())
