"""``goalgraph serve``: the agent (or a team of agents) behind an HTTP task API (FastAPI) and
LangServe, with API keys.

``create_app`` builds the app; ``TaskManager`` runs goals as background asyncio tasks on the
server's event loop, one LangGraph thread per task.
"""

from __future__ import annotations

from goalgraph.serve.app import create_app
from goalgraph.serve.auth import api_keys_from
from goalgraph.serve.tasks import Task, TaskConflict, TaskManager, TaskStatus

__all__ = ["Task", "TaskConflict", "TaskManager", "TaskStatus", "api_keys_from", "create_app"]
