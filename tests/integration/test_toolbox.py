"""ToolBox against real MCP server processes: goalgraph's own server and a third-party-style one."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from helpers import free_port, stop_process
from mcp.types import (
    AudioContent,
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from pydantic import AnyUrl

from goalgraph.spec import McpServerSpec
from goalgraph.tools.toolbox import ToolBox, ToolServerError, content_to_text

TESTING_SERVER = Path(__file__).parents[1] / "servers" / "mcp_testing_server.py"
# Our server imports goalgraph (LangGraph, LangChain); give slow CI machines room to start it.
START_S = 60.0

pytestmark = pytest.mark.timeout(120)


def builtin(workspace: Path) -> McpServerSpec:
    """Spec for goalgraph's own server over ``workspace``, as AgentSpec.all_servers() builds it."""
    return McpServerSpec(
        command=sys.executable, args=["-m", "goalgraph.tools.server", "--workspace", str(workspace)]
    )


def stuck_reads(workspace: Path, seconds: float) -> McpServerSpec:
    """goalgraph's own server, where reading ``stuck.txt`` blocks its thread for ``seconds``.

    As an ``open()`` of a FIFO or a file on a dead network mount would; the rest of the server
    is the real one.
    """
    launcher = (
        "import time\n"
        "from goalgraph.tools.workspace import Workspace\n"
        "read = Workspace.read_text\n"
        "def stuck(self, path, *args, **kwargs):\n"
        "    if path == 'stuck.txt':\n"
        f"        time.sleep({seconds})\n"
        "    return read(self, path, *args, **kwargs)\n"
        "Workspace.read_text = stuck\n"
        "from goalgraph.tools.server import main\n"
        f"main(['--workspace', {str(workspace)!r}])\n"
    )
    return McpServerSpec(command=sys.executable, args=["-c", launcher])


def third_party(record_file: Path) -> McpServerSpec:
    """Spec for the third-party-style testing server."""
    return McpServerSpec(
        command=sys.executable, args=[str(TESTING_SERVER)], env={"RECORD_FILE": str(record_file)}
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace folder with one note, next to a secret that must stay unreachable."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "note.txt").write_text("remember the milk", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    return ws


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    """The file the testing server's ``record`` tool appends to."""
    return tmp_path / "record.txt"


# --- goalgraph's own server ------------------------------------------------------------------


async def test_builtin_server_tools(workspace: Path) -> None:
    async with ToolBox.open({"goalgraph": builtin(workspace)}, start_timeout_s=START_S) as box:
        assert {tool.name for tool in box.tools} >= {
            "calculator",
            "read_file",
            "list_files",
            "write_file",
            "search_files",
            "sqlite_query",
            "http_get",
        }
        assert all(tool.description for tool in box.tools)
        assert box.server_of("calculator") == "goalgraph"
        schemas = box.schemas()
        assert schemas["calculator"]["required"] == ["expression"]
        expression = schemas["calculator"]["properties"]["expression"]
        assert expression["description"]
        # The pattern keeps a schema-constrained model from filling the argument with prose.
        for good in ("12*(3+4)", "2**10", "sqrt(16)/2", "-3 + 4.5"):
            jsonschema.validate(good, expression)
        for prose in ("Compute 100/4", "}} 2. [pending]", ", 7*6", "x" * 201):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(prose, expression)
        assert schemas["list_files"]["properties"]["path"]["default"] == "."
        assert set(schemas["write_file"]["required"]) == {"path", "content"}

        result = await box.call("calculator", {"expression": "12*(3+4)"})
        assert result.ok, result.error
        assert result.content == "84"
        assert result.error is None

        result = await box.call("read_file", {"path": "note.txt"})
        assert (result.ok, result.content) == (True, "remember the milk")

        result = await box.call("write_file", {"path": "out/a.txt", "content": "hi"})
        assert (result.ok, result.content) == (True, "wrote 2 bytes to out/a.txt")
        assert (workspace / "out" / "a.txt").read_text(encoding="utf-8") == "hi"

        result = await box.call("list_files", {})
        assert (result.ok, result.content) == (True, "note.txt\nout/")


async def test_builtin_server_errors_are_tool_errors(workspace: Path) -> None:
    (workspace / "link").symlink_to(workspace.parent / "secret.txt")
    async with ToolBox.open({"goalgraph": builtin(workspace)}, start_timeout_s=START_S) as box:
        for path in ["../secret.txt", "/etc/passwd", "link"]:
            result = await box.call("read_file", {"path": path})
            assert not result.ok
            assert result.error is not None
            assert result.error.startswith("tool 'read_file' failed: ")
            assert "outside the workspace" in result.error
            assert "secret" not in result.content.replace("secret.txt", "")

        result = await box.call("write_file", {"path": "../escape.txt", "content": "x"})
        assert not result.ok
        assert not (workspace.parent / "escape.txt").exists()

        result = await box.call("calculator", {"expression": "1/0"})
        assert (result.ok, result.error) == (False, "tool 'calculator' failed: division by zero")

        result = await box.call("calculator", {"expression": "9**9**9"})
        assert not result.ok
        assert "too large" in (result.error or "")

        result = await box.call("calculator", {})  # missing argument: validated by the server
        assert not result.ok
        assert "expression" in (result.error or "")
        assert "\n" not in (result.error or "")

        # The server survived every error.
        assert (await box.call("calculator", {"expression": "2+2"})).content == "4"


async def test_kept_session_is_fast(workspace: Path) -> None:
    async with ToolBox.open({"goalgraph": builtin(workspace)}, start_timeout_s=START_S) as box:
        first = await box.call("calculator", {"expression": "1+1"})
        second = await box.call("calculator", {"expression": "2+2"})
        assert first.ok and second.ok
        # A fresh stdio session costs ~1.6 s; a kept one a few milliseconds.
        assert second.elapsed_s < 0.5
        timings = [
            (await box.call("calculator", {"expression": f"{i}*2"})).elapsed_s for i in range(20)
        ]
        assert statistics.median(timings) < 0.1


async def test_a_stuck_tool_call_does_not_stall_the_other_tools(workspace: Path) -> None:
    (workspace / "stuck.txt").write_text("at last", encoding="utf-8")
    servers = {"goalgraph": stuck_reads(workspace, seconds=8)}
    async with ToolBox.open(servers, start_timeout_s=START_S) as box:
        stuck = [
            asyncio.ensure_future(box.call("read_file", {"path": "stuck.txt"}, timeout_s=30))
            for _ in range(3)
        ]
        await asyncio.sleep(1)  # the three reads are running in the server
        started = time.perf_counter()
        for i in range(5):
            result = await box.call("calculator", {"expression": f"6*{i}"})
            assert (result.ok, result.content) == (True, str(6 * i))
        assert (await box.call("read_file", {"path": "note.txt"})).content == "remember the milk"
        assert (await box.call("list_files", {})).content == "note.txt\nstuck.txt"
        # On the event loop, each call would have waited for all three stuck reads (24 s).
        assert time.perf_counter() - started < 3
        results = await asyncio.gather(*stuck)
        assert [(result.ok, result.content) for result in results] == [(True, "at last")] * 3


# --- the third-party-style testing server ------------------------------------------------------


async def test_tool_error_is_a_result(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        result = await box.call("boom", {"message": "the flux capacitor broke"})
        assert not result.ok
        assert result.error == "tool 'boom' failed: the flux capacitor broke"
        assert "the flux capacitor broke" in result.content
        assert (await box.call("echo", {"text": "still here"})).content == "still here"


async def test_timeout_is_a_result_and_the_session_survives(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        started = time.perf_counter()
        result = await box.call("slow", {"seconds": 30}, timeout_s=0.5)
        assert time.perf_counter() - started < 5
        assert not result.ok
        assert result.error == "tool 'slow' timed out after 0.5 s"
        assert 0.5 <= result.elapsed_s < 5
        assert (await box.call("echo", {"text": "after"})).content == "after"


async def test_hung_server_is_killed_and_restarted(record_file: Path) -> None:
    servers = {"testing": third_party(record_file)}
    async with ToolBox.open(servers, start_timeout_s=START_S, ping_timeout_s=1) as box:
        pid = int((await box.call("pid", {})).content)
        started = time.perf_counter()
        result = await box.call("hang", {"seconds": 600}, timeout_s=1)
        assert time.perf_counter() - started < 5
        assert not result.ok
        assert result.error == (
            "tool 'hang' timed out after 1 s and server 'testing' did not answer a ping within "
            "1 s: it was stopped as hung; the next call restarts it"
        )
        assert not box.is_running("testing")
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not _alive(pid), "the hung process was not killed"
        echo = await box.call("echo", {"text": "back"})
        assert (echo.ok, echo.content) == (True, "back")
        assert int((await box.call("pid", {})).content) != pid


async def test_slow_tool_on_a_live_server_is_only_a_timeout(record_file: Path) -> None:
    servers = {"testing": third_party(record_file)}
    async with ToolBox.open(servers, start_timeout_s=START_S, ping_timeout_s=1) as box:
        pid = int((await box.call("pid", {})).content)
        result = await box.call("slow", {"seconds": 30}, timeout_s=0.5)
        assert result.error == "tool 'slow' timed out after 0.5 s"
        assert box.is_running("testing")  # it answered the ping: not restarted
        assert int((await box.call("pid", {})).content) == pid


def _alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def test_default_timeout_comes_from_open(record_file: Path) -> None:
    servers = {"testing": third_party(record_file)}
    async with ToolBox.open(servers, timeout_s=0.5, start_timeout_s=START_S) as box:
        result = await box.call("slow", {"seconds": 30})
        assert not result.ok
        assert "timed out after 0.5 s" in (result.error or "")


async def test_concurrent_calls_share_the_session(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        started = time.perf_counter()
        results = await asyncio.gather(*(box.call("slow", {"seconds": 0.5}) for _ in range(4)))
        assert all(result.ok for result in results)
        assert time.perf_counter() - started < 1.9  # concurrent, not one after another


async def test_record_runs_exactly_once_per_call(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        assert (await box.call("record", {"tag": "a"})).content == "1"
        assert (await box.call("record", {"tag": "b"})).content == "2"
    assert record_file.read_text(encoding="utf-8") == "a\nb\n"
    after_close = await box.call("record", {"tag": "c"})
    assert not after_close.ok
    assert "the tool box was closed" in (after_close.error or "")
    assert record_file.read_text(encoding="utf-8") == "a\nb\n"


async def test_server_dying_mid_call(workspace: Path, record_file: Path) -> None:
    servers = {"testing": third_party(record_file), "goalgraph": builtin(workspace)}
    async with ToolBox.open(servers, start_timeout_s=START_S, max_restarts=0) as box:
        result = await box.call("die", {})
        assert not result.ok
        assert result.error is not None
        assert "'die'" in result.error
        assert "server 'testing'" in result.error
        assert not box.is_running("testing")

        started = time.perf_counter()
        for _ in range(3):
            later = await box.call("echo", {"text": "anyone?"})
            assert not later.ok
            assert "'echo'" in (later.error or "")
            assert "server 'testing' is down" in (later.error or "")
        assert time.perf_counter() - started < 1

        # The other server is unaffected.
        assert box.is_running("goalgraph")
        assert (await box.call("calculator", {"expression": "6*7"})).content == "42"


async def test_server_killed_while_idle_does_not_cancel_the_caller(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        pid = int((await box.call("pid", {})).content)
        os.kill(pid, signal.SIGKILL)
        # Block the loop, as a model generating on the CPU would, so the next call writes to the
        # dead process before the client has seen its stdout close. A session entered in the
        # caller's task would now get the caller cancelled by the transport's task group.
        time.sleep(0.3)
        result = await box.call("echo", {"text": "hello?"})
        assert not result.ok
        assert "server 'testing'" in (result.error or "")
        await asyncio.sleep(0.05)  # still not cancelled
        again = await box.call("echo", {"text": "hello?"})  # restarts the server first
        assert (again.ok, again.content) == (True, "hello?")
        assert int((await box.call("pid", {})).content) != pid


async def test_dead_server_restarts_on_the_next_call_up_to_the_limit(record_file: Path) -> None:
    spec = third_party(record_file)
    async with ToolBox.open({"testing": spec}, start_timeout_s=START_S, max_restarts=2) as box:
        first_pid = int((await box.call("pid", {})).content)
        pids = {first_pid}
        for attempt in range(1, 3):
            died = await box.call("die", {})
            assert not died.ok and "server 'testing'" in (died.error or "")
            # The call that was running when the server died is not repeated; the next one
            # restarts the server and runs on the new process.
            echo = await box.call("echo", {"text": f"back {attempt}"})
            assert (echo.ok, echo.content) == (True, f"back {attempt}")
            assert box.is_running("testing")
            pids.add(int((await box.call("pid", {})).content))
        assert len(pids) == 3  # two restarts, each a new process
        await box.call("die", {})
        given_up = await box.call("echo", {"text": "once more"})
        assert not given_up.ok
        assert "gave up after 2 restarts" in (given_up.error or "")


async def test_server_that_cannot_restart_is_reported(tmp_path: Path) -> None:
    flag = tmp_path / "allow-start"
    flag.write_text("yes", encoding="utf-8")
    # A launcher that refuses to start once the flag file is gone.
    launcher = (
        "import os, runpy, sys\n"
        f"if not os.path.exists({str(flag)!r}): sys.exit('not today')\n"
        f"sys.argv = [{str(TESTING_SERVER)!r}]\n"
        f"runpy.run_path({str(TESTING_SERVER)!r}, run_name='__main__')\n"
    )
    spec = McpServerSpec(command=sys.executable, args=["-c", launcher])
    async with ToolBox.open({"testing": spec}, start_timeout_s=START_S) as box:
        assert (await box.call("echo", {"text": "hi"})).ok
        flag.unlink()
        await box.call("die", {})
        result = await box.call("echo", {"text": "hi"})
        assert not result.ok
        assert "did not restart" in (result.error or "")


async def test_unknown_tool_and_bad_arguments(record_file: Path) -> None:
    async with ToolBox.open({"testing": third_party(record_file)}, start_timeout_s=START_S) as box:
        result = await box.call("nope", {})
        assert not result.ok
        assert result.error is not None
        assert result.error.startswith("unknown tool 'nope'; available tools: boom, die, echo")
        with pytest.raises(KeyError, match="nope"):
            box.server_of("nope")

        result = await box.call("echo", ["not", "a", "dict"])  # type: ignore[arg-type]
        assert not result.ok
        assert "arguments must be an object" in (result.error or "")

        result = await box.call("echo", {"wrong": 1})
        assert not result.ok
        assert "'echo'" in (result.error or "")


async def test_content_normalisation_through_a_server(record_file: Path) -> None:
    servers = {"testing": third_party(record_file)}
    async with ToolBox.open(servers, start_timeout_s=START_S, max_output_chars=100) as box:
        stats = await box.call("stats", {"values": [1, 2, 3]})
        assert (stats.ok, stats.content) == (True, '{"count":3,"total":6.0,"mean":2.0}')

        pixel = await box.call("pixel", {})
        assert (pixel.ok, pixel.content) == (True, "[image: image/png, 70 bytes]")

        long = await box.call("echo", {"text": "x" * 1000})
        assert long.ok
        assert long.content.startswith("x" * 100 + "\n[truncated: 900 more characters")


async def test_name_clash_gets_server_prefix(tmp_path: Path) -> None:
    servers = {"a": third_party(tmp_path / "a.txt"), "b": third_party(tmp_path / "b.txt")}
    async with ToolBox.open(servers, start_timeout_s=START_S) as box:
        names = [tool.name for tool in box.tools]
        assert len(names) == len(set(names))
        assert "a__echo" in names
        assert "b__echo" in names
        assert "echo" not in names
        assert box.server_of("b__record") == "b"
        assert set(box.schemas()) == set(names)
        assert (await box.call("b__record", {"tag": "x"})).content == "1"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "x\n"
    assert not (tmp_path / "a.txt").exists()


# --- servers that do not start ---------------------------------------------------------------


async def test_missing_command_raises_tool_server_error() -> None:
    spec = McpServerSpec(command="goalgraph-no-such-server", args=["--flag"])
    with pytest.raises(ToolServerError) as caught:
        async with ToolBox.open({"ghost": spec}):
            pass
    error = caught.value
    assert error.server == "ghost"
    assert "goalgraph-no-such-server --flag" in str(error)
    assert "command not found" in str(error)
    assert not isinstance(error, BaseExceptionGroup)


async def test_server_exiting_at_start_raises_tool_server_error() -> None:
    spec = McpServerSpec(command=sys.executable, args=["-c", "raise SystemExit(3)"])
    with pytest.raises(ToolServerError, match=r"'quitter'.*exited before the MCP handshake"):
        async with ToolBox.open({"quitter": spec}):
            pass


async def test_server_that_never_answers_times_out() -> None:
    spec = McpServerSpec(command=sys.executable, args=["-c", "import time; time.sleep(60)"])
    started = time.perf_counter()
    with pytest.raises(ToolServerError, match="not ready within 1 s"):
        async with ToolBox.open({"mute": spec}, start_timeout_s=1):
            pass
    assert time.perf_counter() - started < 10


async def test_one_bad_server_fails_the_whole_box(record_file: Path) -> None:
    servers = {
        "testing": third_party(record_file),
        "ghost": McpServerSpec(command="goalgraph-no-such-server"),
    }
    with pytest.raises(ToolServerError, match="'ghost'"):
        async with ToolBox.open(servers, start_timeout_s=START_S):
            pass


async def test_unreachable_url_raises_tool_server_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(ToolServerError, match="cannot connect"):
        async with ToolBox.open({"web": McpServerSpec(url=url)}, start_timeout_s=10):
            pass


# --- streamable HTTP -------------------------------------------------------------------------


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """Start goalgraph's server over streamable HTTP on a free port; yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "goalgraph.tools.server",
            "--workspace",
            str(tmp_path / "ws"),
            "--transport",
            "streamable-http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, process, timeout_s=START_S)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(process)
        if process.stderr is not None:
            process.stderr.close()


async def test_streamable_http_server(http_server: str) -> None:
    async with ToolBox.open({"web": McpServerSpec(url=http_server)}, start_timeout_s=30) as box:
        assert "calculator" in {tool.name for tool in box.tools}
        result = await box.call("calculator", {"expression": "12*(3+4)"})
        assert (result.ok, result.content) == (True, "84")
        second = await box.call("calculator", {"expression": "1+1"})
        assert second.ok
        assert second.elapsed_s < 0.5
        bad = await box.call("read_file", {"path": "/etc/passwd"})
        assert not bad.ok
        assert "outside the workspace" in (bad.error or "")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"server exited with {process.returncode}: {stderr}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server did not listen on port {port} within {timeout_s} s")


# --- content_to_text, the one place tool output becomes text ---------------------------------


def test_text_blocks_are_joined() -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert content_to_text(blocks) == "a\nb"
    assert content_to_text("plain") == "plain"
    assert content_to_text(None) == ""
    assert content_to_text([]) == ""


def test_json_is_compacted_only_for_structured_results() -> None:
    pretty = '{\n  "a": 1,\n  "b": [1, 2]\n}'
    assert content_to_text([{"type": "text", "text": pretty}]) == pretty  # e.g. a file's text
    structured = {"a": 1, "b": [1, 2]}
    assert content_to_text([{"type": "text", "text": pretty}], structured) == '{"a":1,"b":[1,2]}'
    assert content_to_text([], structured) == '{"a":1,"b":[1,2]}'
    assert content_to_text([{"type": "text", "text": "84"}], {"result": "84"}) == "84"


def test_langchain_media_blocks_are_described() -> None:
    data = base64.b64encode(b"\x89PNG" + b"\x00" * 96).decode()
    blocks = [
        {"type": "image", "base64": data, "mime_type": "image/png"},
        {"type": "image", "url": "https://example.com/a.jpg", "mime_type": "image/jpeg"},
        {"type": "file", "url": "file:///r/report.pdf", "mime_type": "application/pdf"},
        {"type": "file", "base64": base64.b64encode(b"12345").decode()},
    ]
    assert content_to_text(blocks).splitlines() == [
        "[image: image/png, 100 bytes]",
        "[image: image/jpeg, https://example.com/a.jpg]",
        "[file: application/pdf, file:///r/report.pdf]",
        "[file: unknown type, 5 bytes]",
    ]


def test_raw_mcp_blocks_are_described() -> None:
    blob = base64.b64encode(b"abc").decode()
    blocks = [
        TextContent(type="text", text="hello"),
        ImageContent(type="image", data=blob, mimeType="image/gif"),
        AudioContent(type="audio", data=blob, mimeType="audio/wav"),
        ResourceLink(
            type="resource_link", uri=AnyUrl("file:///a.csv"), name="a.csv", mimeType="text/csv"
        ),
        EmbeddedResource(
            type="resource",
            resource=TextResourceContents(uri=AnyUrl("file:///n.txt"), text="embedded text"),
        ),
        EmbeddedResource(
            type="resource",
            resource=BlobResourceContents(
                uri=AnyUrl("file:///b.bin"), blob=blob, mimeType="application/octet-stream"
            ),
        ),
    ]
    assert content_to_text(blocks).splitlines() == [
        "hello",
        "[image: image/gif, 3 bytes]",
        "[audio: audio/wav, 3 bytes]",
        "[resource: a.csv, text/csv, file:///a.csv]",
        "embedded text",
        "[resource: application/octet-stream, 3 bytes]",
    ]


def test_unknown_blocks_are_serialised() -> None:
    assert content_to_text([{"type": "thing", "value": 1}]) == '{"type":"thing","value":1}'


def test_huge_output_is_capped_with_a_note() -> None:
    text = content_to_text("y" * 20_000)
    assert text.startswith("y" * 4000 + "\n[truncated: 16000 more characters, 20000 in all]")
    assert len(text) < 4100
    assert content_to_text("y" * 20_000, max_chars=None) == "y" * 20_000
