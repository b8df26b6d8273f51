"""goalgraph's MCP server over stdio, spoken to in raw JSON-RPC: the bound on a request's size."""

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


def test_oversized_line_without_an_id_up_front_is_dropped(
    server: subprocess.Popen[bytes],
) -> None:
    assert server.stdin is not None and server.stdout is not None
    # The id comes after the huge params: it cannot be known without reading the whole line.
    line = '{"method": "tools/call", "params": {"name": "echo", "x": "' + "y" * (5 * MB) + '"}'
    _send_raw(server.stdin, line + ', "id": 9, "jsonrpc": "2.0"}\n')
    _send(server.stdin, _request(10, "tools/call", _calculate("6*7")))
    answer = _receive(server.stdout)  # no reply for id 9; the next request is answered
    assert (answer["id"], answer["result"]["content"][0]["text"]) == (10, "42")


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
