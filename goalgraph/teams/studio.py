"""The ready team specs of ``examples/teams`` as graphs for ``langgraph.json`` (``langgraph dev``).

Studio draws each member node with the seven-node graph it runs inside; models and tool servers
open on first use, not at import. Run from a source checkout, where ``examples/`` is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from goalgraph.spec import AgentSpec
from goalgraph.teams.graph import build_team_graph

__all__ = ["EXAMPLES", "debate", "example_team", "orchestrator", "pipeline"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "teams"
"""The folder of the ready team specs."""


def example_team(name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Return the graph of ``examples/teams/<name>.yaml``, compiled without a checkpointer."""
    return build_team_graph(AgentSpec.from_yaml(EXAMPLES / f"{name}.yaml"))


orchestrator = example_team("orchestrator")
"""Orchestrator and specialists (``examples/teams/orchestrator.yaml``)."""
pipeline = example_team("pipeline")
"""Researcher, writer, reviewer (``examples/teams/pipeline.yaml``)."""
debate = example_team("debate")
"""Two debaters over two rounds and a judge (``examples/teams/debate.yaml``)."""
