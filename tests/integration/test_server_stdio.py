"""goalgraph's MCP server over stdio, spoken to in raw JSON-RPC and by the MCP SDK's client: the
bound on a request's size."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from helpers import stop_process

from goalgraph.spec import McpServerSpec
from goalgraph.tools.stdio import _trailing_members
from goalgraph.tools.toolbox import ToolBox

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """goalgraph's server over stdio, initialised, with the default request bound (4 MiB)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "goalgraph.tools.server", "--workspace", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        _send(process.stdin, _request(1, "initialize", _INITIALIZE))
        assert "result" in _receive(process.stdout)
        _send(process.stdin, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield process
    finally:
        stop_process(process)


_INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "raw-test", "version": "0"},
}


def test_oversized_request_is_refused_unread_and_the_server_keeps_answering(
    server: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert server.stdin is not None and server.stdout is not None
    size = 200 * MB
    head = json.dumps(_request(7, "tools/call", {"name": "write_file", "arguments": {}}))
    # {"jsonrpc": ..., "id": 7, ..., "arguments": {"path": "big.txt", "content": "xxx...x"}}}
    prefix = head[: -len("}}}")] + '"path": "big.txt", "content": "'
    writer = threading.Thread(target=_send_huge, args=(server.stdin, prefix, size), daemon=True)
    writer.start()
    # The refusal comes while the line is still being sent: it is not read to its end first.
    refusal = _receive(server.stdout)
    assert refusal["id"] == 7
    assert refusal["error"]["code"] == -32600
    assert refusal["error"]["message"].startswith(
        f"request too large: over {4 * MB} bytes, the limit of this server"
    )
    writer.join(timeout=60)
    assert not writer.is_alive()

    _send(server.stdin, _request(8, "tools/call", _calculate("12*(3+4)")))
    answer = _receive(server.stdout)
    assert (answer["id"], answer["result"]["content"][0]["text"]) == (8, "84")
    assert not (tmp_path / "big.txt").exists()
    # Never held whole: the process peaked far below the 200 MB line.
    peak_kb = int(_status(server.pid)["VmHWM"].split()[0])
    assert peak_kb < 150 * 1024, f"peak memory {peak_kb} kB"


def test_oversized_line_with_its_id_last_is_refused_when_it_ends(
    server: subprocess.Popen[bytes],
) -> None:
    assert server.stdin is not None and server.stdout is not None
    # The id comes after the huge params, as the MCP Python SDK writes it: the refusal comes
    # once the line has ended, from its last bytes (an "id" inside the params does not count).
    params = '{"name": "echo", "arguments": {"x": "' + "y" * (5 * MB) + '", "id": 99}}'
    line = '{"method": "tools/call", "params": ' + params + ', "jsonrpc": "2.0", "id": 9}'
    _send_raw(server.stdin, line + "\n")
    _send(server.stdin, _request(10, "tools/call", _calculate("6*7")))
    refusal = _receive(server.stdout)
    assert refusal["id"] == 9
    assert refusal["error"]["message"].startswith("request too large")
    answer = _receive(server.stdout)
    assert (answer["id"], answer["result"]["content"][0]["text"]) == (10, "42")


def test_oversized_line_with_its_id_in_the_middle_is_dropped(
    server: subprocess.Popen[bytes],
) -> None:
    assert server.stdin is not None and server.stdout is not None
    # Neither among the first members nor the last: it cannot be known without parsing it all.
    line = '{"method": "tools/call", "params": {"x": "' + "y" * (5 * MB) + '"}, "id": 9, "z": {}}'
    _send_raw(server.stdin, line + "\n")
    _send(server.stdin, _request(10, "tools/call", _calculate("6*7")))
    answer = _receive(server.stdout)  # no reply for id 9; the next request is answered
    assert (answer["id"], answer["result"]["content"][0]["text"]) == (10, "42")


async def test_oversized_request_from_the_sdk_client_is_refused_not_left_waiting(
    tmp_path: Path,
) -> None:
    # goalgraph's own client (the MCP SDK under ToolBox) writes the id last.
    spec = McpServerSpec(
        command=sys.executable, args=["-m", "goalgraph.tools.server", "--workspace", str(tmp_path)]
    )
    async with ToolBox.open({"goalgraph": spec}, start_timeout_s=60) as box:
        args = {"path": "big.txt", "content": "x" * (5 * MB)}
        result = await box.call("write_file", args, timeout_s=30)
        assert result.error is not None
        assert "request too large: over 4194304 bytes" in result.error
        assert result.elapsed_s < 10  # answered, not left to time out
        assert not (tmp_path / "big.txt").exists()
        assert (await box.call("calculator", {"expression": "6*7"})).content == "42"


def test_request_just_under_the_bound_is_served(
    server: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert server.stdin is not None and server.stdout is not None
    content = "z" * (MB - 100)  # the workspace's own write cap is 1 MiB
    arguments = {"path": "ok.txt", "content": content}
    _send(server.stdin, _request(11, "tools/call", {"name": "write_file", "arguments": arguments}))
    answer = _receive(server.stdout)
    assert answer["id"] == 11, answer
    assert answer["result"]["content"][0]["text"] == f"wrote {len(content)} bytes to ok.txt"
    assert (tmp_path / "ok.txt").read_text(encoding="utf-8") == content


def _request(request_id: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _calculate(expression: str) -> dict[str, Any]:
    return {"name": "calculator", "arguments": {"expression": expression}}


def _send(stream: IO[bytes], message: dict[str, Any]) -> None:
    _send_raw(stream, json.dumps(message) + "\n")


def _send_raw(stream: IO[bytes], text: str) -> None:
    stream.write(text.encode())
    stream.flush()


def _send_huge(stream: IO[bytes], prefix: str, size: int) -> None:
    """Send ``prefix``, ``size`` bytes of ``x`` and the message's end, in 1 MB pieces."""
    stream.write(prefix.encode())
    piece = b"x" * MB
    for _ in range(size // MB):
        stream.write(piece)
    stream.write(b'"}}}\n')
    stream.flush()


def _receive(stream: IO[bytes]) -> dict[str, Any]:
    line = stream.readline()
    assert line, "the server closed its stdout"
    message: dict[str, Any] = json.loads(line)
    return message


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_trailing_members_are_the_object_s_own() -> None:
    sdk = b'{"method":"tools/call","params":{"x":"yyy"},"jsonrpc":"2.0","id":3}\n'
    assert _trailing_members(sdk[-30:]) == {"jsonrpc": "2.0", "id": 3}
    assert _trailing_members(b'yyy", "id": "req-7"}\r\n') == {"id": "req-7"}
    assert _trailing_members(b'yyy", "params": {"id": 5}}') == {}  # nested in the params
    assert _trailing_members(b'"q\\", \\"id\\": 7"}') == {}  # inside a string
    assert _trailing_members(b'yyy", "id": 3') == {}  # no closing brace: cut short
