"""goalgraph's own MCP server process against another process that swaps workspace names for
links to outside while the agent's file tools run (``tests/unit/test_workspace_race.py`` runs
the same attack on the ``Workspace`` class directly)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from goalgraph.spec import McpServerSpec
from goalgraph.tools.toolbox import ToolBox

SWAPPER = Path(__file__).parents[1] / "servers" / "link_swapper.py"
SECRET = "TOP SECRET outside the workspace"
SWAP_SECONDS = 4.0
START_S = 60.0  # the server imports goalgraph; give slow machines room to start it

pytestmark = pytest.mark.timeout(120)


async def test_server_tools_never_lead_outside_under_link_swaps(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    (ws / "box").mkdir(parents=True)
    (ws / "notes.txt").write_text("harmless notes", encoding="utf-8")
    (ws / "box" / "data.txt").write_text("harmless data", encoding="utf-8")
    (outside / "box").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (outside / "box" / "data.txt").write_text(SECRET, encoding="utf-8")
    server = McpServerSpec(
        command=sys.executable, args=["-m", "goalgraph.tools.server", "--workspace", str(ws)]
    )
    calls = [
        ("read_file", {"path": "notes.txt"}),
        ("read_file", {"path": "box/data.txt"}),
        ("list_files", {"path": "box"}),
        ("write_file", {"path": "box/new.txt", "content": "mine"}),
    ]
    leaked: list[str] = []
    served = refused = 0
    async with ToolBox.open({"goalgraph": server}, start_timeout_s=START_S) as box:
        swapper = subprocess.Popen(
            [sys.executable, str(SWAPPER), str(ws), str(outside), str(SWAP_SECONDS), "links"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert swapper.stdout is not None
        assert swapper.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + SWAP_SECONDS
        while time.monotonic() < deadline:
            for tool, args in calls:
                result = await box.call(tool, args, timeout_s=10)
                if result.ok:
                    served += 1
                else:
                    refused += 1
                if "SECRET" in result.content or "SECRET" in (result.error or ""):
                    leaked.append(result.content)
        out, _ = swapper.communicate(timeout=30)
    assert leaked == []
    assert sorted(path.name for path in (outside / "box").iterdir()) == ["data.txt"]
    assert (outside / "secret.txt").read_text(encoding="utf-8") == SECRET
    assert int(out.strip()) > 1000  # the attacker was busy all along
    assert served > 20
    assert refused > 5
