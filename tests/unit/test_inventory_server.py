"""The third-party stockroom MCP server of the task suite, as a real subprocess over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from helpers import BENCHMARKS
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SERVER = BENCHMARKS / "servers" / "inventory_server.py"
SEED = BENCHMARKS / "servers" / "stockroom_seed.json"


@asynccontextmanager
async def stockroom(state: Path, *, by_env: bool = False) -> AsyncIterator[ClientSession]:
    args = [str(SERVER)] if by_env else [str(SERVER), "--state", str(state)]
    env = {**os.environ, "INVENTORY_STATE": str(state)} if by_env else None
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **args) -> tuple[bool, str]:
    result = await session.call_tool(tool, args)
    text = "\n".join(block.text for block in result.content if block.type == "text")
    return not result.isError, text


def test_the_server_imports_nothing_from_goalgraph():
    source = SERVER.read_text()
    assert "goalgraph" not in source.split('"""', 2)[2]  # past the module docstring
    assert "from mcp.server.fastmcp import FastMCP" in source


async def test_tools_are_annotated_reads_and_writes(tmp_path):
    async with stockroom(tmp_path / "s.json") as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    reads = {name for name, tool in tools.items() if tool.annotations.readOnlyHint}
    writes = set(tools) - reads
    assert reads == {
        "search_products", "get_product", "get_supplier", "find_customer", "list_orders",
        "get_order",
    }  # fmt: skip
    assert writes == {
        "adjust_stock", "set_price", "place_order", "cancel_order", "ship_order", "request_restock",
    }  # fmt: skip
    assert all(tools[name].annotations.readOnlyHint is False for name in writes)
    assert tools["cancel_order"].annotations.destructiveHint is True
    assert tools["place_order"].annotations.destructiveHint is False
    for tool in tools.values():  # described well enough for a model to use
        assert len(tool.description or "") > 30
        for name, schema in tool.inputSchema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"


async def test_reads_writes_and_errors_against_the_state_file(tmp_path):
    state = tmp_path / "stockroom.json"
    state.write_text(SEED.read_text())
    async with stockroom(state, by_env=True) as session:
        ok, text = await call(session, "get_product", sku="hinge-brass")
        assert ok and "in stock: 14 units" in text and "Hinge & Co" in text
        ok, text = await call(session, "get_product", sku="brass hinge")
        assert not ok and "no product with SKU 'brass hinge'" in text and "hinge-brass" in text
        ok, text = await call(session, "adjust_stock", sku="hinge-brass", change=-20)
        assert not ok and "has 14 units; removing 20 would leave -6" in text
        ok, text = await call(
            session, "place_order", customer="Yuki", sku="knob-walnut", quantity=1
        )
        assert not ok and "only 0 units of knob-walnut in stock" in text
        ok, text = await call(session, "get_supplier", supplier="nobody")
        assert not ok and "Toolhaus GmbH (toolhaus)" in text
        ok, text = await call(session, "cancel_order", order_id="SO-1002")
        assert not ok and "SO-1002 is shipped; only open orders can be cancelled" in text
        ok, text = await call(
            session, "place_order", customer="Yuki", sku="clamp-bar-60", quantity=2
        )
        assert ok and "SO-1007" in text and "Yuki Tanaka" in text
        ok, text = await call(session, "cancel_order", order_id="so-1003", reason="called")
        assert ok
        ok, text = await call(session, "list_orders", status="open", customer="Ada Brook")
        assert ok and text.splitlines() == [
            "SO-1001: open, Ada Brook, total 26.60 EUR",
            "SO-1004: open, Ada Brook, total 49.80 EUR",
        ]
    data = json.loads(state.read_text())
    assert data["orders"]["SO-1007"]["customer"] == "c-yuki"
    assert data["products"]["clamp-bar-60"]["quantity"] == 4
    assert data["orders"]["SO-1003"]["status"] == "cancelled"
    assert data["products"]["varnish-oak"]["quantity"] == 12
    assert data["products"]["hinge-brass"]["quantity"] == 14  # the refused change left no trace


async def test_a_missing_state_file_starts_empty_and_a_failed_change_writes_nothing(tmp_path):
    state = tmp_path / "new" / "stockroom.json"
    async with stockroom(state) as session:
        ok, text = await call(session, "search_products")
        assert ok and "SKUs: none" in text
        ok, _ = await call(session, "adjust_stock", sku="x", change=1)
        assert not ok
    assert not state.exists()


def test_the_server_refuses_to_start_without_a_usable_state_file(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INVENTORY_STATE"}
    done = subprocess.run(
        [sys.executable, str(SERVER)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2 and "--state PATH or $INVENTORY_STATE" in done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = subprocess.run(
        [sys.executable, str(SERVER), "--state", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "is not valid JSON" in done.stderr
