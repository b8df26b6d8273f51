"""http_get against a real HTTP server on 127.0.0.1, and through goalgraph's MCP server process."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from pydantic import ValidationError

from goalgraph.spec import HttpToolSpec, McpServerSpec
from goalgraph.tools.allowlist import split_port
from goalgraph.tools.html_text import DEPTH_NOTE, TIME_NOTE
from goalgraph.tools.toolbox import ToolBox
from goalgraph.tools.web import Allowlist, WebError, fetch, html_to_text

pytestmark = pytest.mark.timeout(60)

MAX_BYTES = 10_000
PAGE = b"""<!doctype html>
<html><head><title> The  Test
 Page </title>
<style>body { color: red; }</style>
<script>if (1 < 2) { document.write("<p>not text</p>"); }</script>
</head>
<body><h1>Hello &amp; welcome</h1>
<p>First   paragraph
with a line break.</p>
<ul><li>one</li><li>two</li></ul>
<noscript>enable javascript</noscript>
</body></html>
"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
# 200 KB on which html.parser rescanned the rest of the page at every "<a": about 30 s.
CRAFTED = b"<title>Crafted</title><p>before</p>" + b"<a" * 100_000


class _Handler(BaseHTTPRequestHandler):
    """Routes of the test server; ``self.server.stopping`` ends the slow one early."""

    def do_GET(self) -> None:
        route = _ROUTES.get(self.path.split("?")[0])
        if route is None:
            self._send(404, "text/plain", b"no such page")
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._send(302, "text/plain", b"moved", Location=location)

    def _slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        stopping: threading.Event = self.server.stopping  # type: ignore[attr-defined]
        try:
            # A byte every 0.1 s: every single read is fast, only the total is too slow.
            for _ in range(300):
                if stopping.wait(0.1):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            return  # the client gave up, as it should


def _port(handler: _Handler) -> int:
    return cast(ThreadingHTTPServer, handler.server).server_port


_ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/page.html": lambda h: h._send(200, "text/html; charset=utf-8", PAGE),
    "/data.json": lambda h: h._send(
        200, "application/json", json.dumps({"name": "goalgraph", "tags": ["a", "b"]}).encode()
    ),
    "/big.txt": lambda h: h._send(200, "text/plain", b"0123456789" * (MAX_BYTES // 2)),
    # 5 MB of zeros in about 5 KB of gzip: the cap must apply to the decoded size.
    "/bomb.txt": lambda h: h._send(
        200, "text/plain", gzip.compress(b"0" * 5_000_000), Content_Encoding="gzip"
    ),
    "/slow.txt": lambda h: h._slow(),
    "/latin1.html": lambda h: h._send(
        200, "text/html; charset=iso-8859-1", "<p>café crème</p>".encode("latin-1")
    ),
    "/bogus-charset.txt": lambda h: h._send(200, "text/plain; charset=base64", "naïve".encode()),
    "/image.png": lambda h: h._send(200, "image/png", PNG),
    "/host": lambda h: h._send(200, "text/plain", h.headers["Host"].encode()),
    "/redirect-ok": lambda h: h._redirect("/page.html"),
    "/redirect-evil": lambda h: h._redirect("http://evil.example/steal"),
    "/redirect-file": lambda h: h._redirect("file:///etc/passwd"),
    "/redirect-localhost": lambda h: h._redirect(f"http://localhost:{_port(h)}/page.html"),
    "/redirect-metadata": lambda h: h._redirect("http://169.254.169.254/latest/meta-data/"),
    "/loop": lambda h: h._redirect("/loop"),
    "/redirect": lambda h: h._redirect(parse_qs(urlsplit(h.path).query)["to"][0]),
    "/crafted.html": lambda h: h._send(200, "text/html", CRAFTED),
}


@contextlib.contextmanager
def _serving() -> Iterator[str]:
    """Serve ``_ROUTES`` on a free port of 127.0.0.1; yield ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The test server's ``http://127.0.0.1:PORT``."""
    with _serving() as url:
        yield url


@pytest.fixture(scope="module")
def other_url() -> Iterator[str]:
    """A second test server on another port of 127.0.0.1."""
    with _serving() as url:
        yield url


def local(base_url: str) -> str:
    """The allowlist entry of the server at ``base_url``: ``127.0.0.1:PORT``."""
    return base_url.removeprefix("http://")


def spec(*hosts: str, max_bytes: int = MAX_BYTES, timeout_s: float = 5.0) -> HttpToolSpec:
    """An http spec allowing ``hosts``."""
    return HttpToolSpec(allow_hosts=list(hosts), max_bytes=max_bytes, timeout_s=timeout_s)


# --- content ----------------------------------------------------------------------------------


async def test_html_page_becomes_readable_text(base_url: str) -> None:
    result = await fetch(f"{base_url}/page.html", spec(local(base_url)))
    assert (result.status, result.content_type, result.title) == (200, "text/html", "The Test Page")
    assert result.text == ("Hello & welcome\nFirst paragraph with a line break.\n- one\n- two"), (
        result.text
    )
    rendered = result.render()
    assert rendered.startswith(f"URL: {base_url}/page.html\nStatus: 200 OK\nTitle: The Test Page")
    for hidden in ("color: red", "document.write", "not text", "enable javascript", "<"):
        assert hidden not in result.text


def test_html_to_text_first_title_no_svg_collapsed_whitespace() -> None:
    html = "<title>A</title><svg><title>B</title><text>drawn</text></svg><p>x<br>y</p>"
    assert html_to_text(html) == ("x\ny", "A")
    assert html_to_text("<p>a <b>bold</b>\nword</p><pre>  kept\n  lines</pre>") == (
        "a bold word\nkept\nlines",
        None,
    )


@pytest.mark.parametrize(
    "markup",
    [
        "<a" * 100_000,  # an unfinished start tag at every "<"
        "<!--" * 50_000,
        "</" * 100_000,
        "<![" * 66_000,  # html.parser raised AssertionError on this one
        "<a>" * 66_000,
        "<div>" * 40_000,
    ],
    ids=["lt-a", "comment-open", "end-tag-open", "marked-section", "open-a", "nested-div"],
)
def test_crafted_markup_converts_in_linear_time(markup: str) -> None:
    page = "<title>T</title><p>before</p>" + markup
    assert len(page) >= 190_000
    started = time.perf_counter()
    text, title = html_to_text(page)
    assert time.perf_counter() - started < 2.0
    assert title == "T"
    assert text.startswith("before"), text[:80]


async def test_crafted_page_is_fetched_within_the_deadline(base_url: str) -> None:
    started = time.perf_counter()
    result = await fetch(f"{base_url}/crafted.html", spec(local(base_url), max_bytes=300_000))
    assert time.perf_counter() - started < 2.0
    assert (result.title, result.text, result.truncated) == ("Crafted", "before", False)


def test_nesting_beyond_the_parser_limit_is_cut_with_a_note() -> None:
    text, _ = html_to_text("<p>top</p>" + "<div>" * 3000 + "deep")
    assert text == f"top\n{DEPTH_NOTE}"
    text, _ = html_to_text("<div>" * 500 + "deep enough" + "</div>" * 500 + "<p>after</p>")
    assert text == "deep enough\nafter"


def test_conversion_stops_at_its_deadline() -> None:
    text, title = html_to_text("<title>T</title>" + "<p>x</p>" * 10, deadline=time.monotonic() - 1)
    assert (text, title) == (TIME_NOTE, None)
    assert html_to_text("<p>x</p>", deadline=time.monotonic() + 60) == ("x", None)


async def test_json_is_pretty_printed(base_url: str) -> None:
    result = await fetch(f"{base_url}/data.json", spec(local(base_url)))
    assert json.loads(result.text) == {"name": "goalgraph", "tags": ["a", "b"]}
    assert result.text.startswith('{\n "name": "goalgraph",')


async def test_charset_comes_from_the_content_type(base_url: str) -> None:
    result = await fetch(f"{base_url}/latin1.html", spec(local(base_url)))
    assert result.text == "café crème"
    # A charset that is no text encoding falls back to UTF-8.
    result = await fetch(f"{base_url}/bogus-charset.txt", spec(local(base_url)))
    assert result.text == "naïve"


async def test_binary_content_is_described_not_returned(base_url: str) -> None:
    result = await fetch(f"{base_url}/image.png", spec(local(base_url)))
    assert result.text == f"[binary content: image/png, {len(PNG)} bytes; not shown]"
    assert result.size == 0


async def test_request_goes_to_the_checked_address_with_the_original_host_header(
    base_url: str,
) -> None:
    port = base_url.rsplit(":", 1)[1]
    result = await fetch(f"{base_url}/host", spec(local(base_url)))
    assert result.text == f"127.0.0.1:{port}"
    # localhost may resolve to ::1 first, where nothing listens: the next address is tried.
    result = await fetch(f"http://LOCALHOST:{port}/host", spec(f"localhost:{port}"))
    assert result.text == f"localhost:{port}"


async def test_error_status_is_a_result(base_url: str) -> None:
    result = await fetch(f"{base_url}/missing", spec(local(base_url)))
    assert (result.status, result.text) == (404, "no such page")


# --- caps -------------------------------------------------------------------------------------


async def test_body_is_cut_at_max_bytes(base_url: str) -> None:
    result = await fetch(f"{base_url}/big.txt", spec(local(base_url)))
    assert result.truncated
    assert len(result.text) == MAX_BYTES == result.size
    assert result.render().endswith(
        f"[truncated: only the first {MAX_BYTES} bytes of the body were read]"
    )


async def test_gzip_body_is_cut_at_max_bytes_after_decoding(base_url: str) -> None:
    result = await fetch(f"{base_url}/bomb.txt", spec(local(base_url)))
    assert result.truncated
    assert result.text == "0" * MAX_BYTES


async def test_total_time_is_capped(base_url: str) -> None:
    started = time.perf_counter()
    with pytest.raises(WebError, match=r"^timed out: fetching .*/slow.txt took longer than 1 s$"):
        await fetch(f"{base_url}/slow.txt", spec(local(base_url), timeout_s=1.0))
    assert time.perf_counter() - started < 3.0


# --- redirects --------------------------------------------------------------------------------


async def test_redirect_to_an_allowed_path_is_followed(base_url: str) -> None:
    result = await fetch(f"{base_url}/redirect-ok", spec(local(base_url)))
    assert (result.url, result.title) == (f"{base_url}/page.html", "The Test Page")


@pytest.mark.parametrize(
    ("path", "hosts", "message"),
    [
        (
            "/redirect-evil",
            ["{local}"],
            "host 'evil.example' is not on the http allowlist (allowed: 127.0.0.1:{port})",
        ),
        ("/redirect-file", ["{local}"], "only http:// and https:// URLs can be fetched"),
        # "*" allows the name localhost, but not the private address it resolves to.
        (
            "/redirect-localhost",
            ["{local}", "*:{port}"],
            "refused: 'localhost' resolves to a private address 127.0.0.1",
        ),
        (
            "/redirect-metadata",
            ["{local}", "*"],
            "refused: '169.254.169.254' resolves to a private address 169.254.169.254",
        ),
        ("/loop", ["{local}"], "too many redirects: more than 5, last to "),
    ],
)
async def test_every_redirect_hop_is_checked(
    base_url: str, path: str, hosts: list[str], message: str
) -> None:
    port = base_url.rsplit(":", 1)[1]
    allowed = [host.format(local=local(base_url), port=port) for host in hosts]
    with pytest.raises(WebError) as caught:
        await fetch(f"{base_url}{path}", spec(*allowed))
    assert str(caught.value).startswith(message.format(port=port)), caught.value


# --- refusals before any connection -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hosts", "message"),
    [
        (
            "http://evil.com/",
            ["example.com"],
            "host 'evil.com' is not on the http allowlist (allowed: example.com)",
        ),
        (
            "http://example.com.evil.com/",
            ["example.com"],
            "host 'example.com.evil.com' is not on the http allowlist",
        ),
        ("http://notexample.com/", ["example.com"], "host 'notexample.com' is not on"),
        ("http://example.com@evil.com/", ["example.com"], "refused: URLs with user info"),
        ("http://example.com:pw@example.com/", ["example.com"], "refused: URLs with user info"),
        ("file:///etc/passwd", ["*"], "only http:// and https:// URLs can be fetched, not file:"),
        ("ftp://example.com/x", ["*"], "only http:// and https:// URLs can be fetched, not ftp:"),
        ("example.com/x", ["*"], "only http:// and https:// URLs can be fetched, not a URL"),
        ("http://bücher.de/", ["example.com"], "host 'xn--bcher-kva.de' is not on"),
        ("http://example.com/", [], "http_get is disabled: no host is allowed"),
        # "*" never allows a private address, however it is written.
        ("http://127.0.0.1/", ["*"], "refused: '127.0.0.1' resolves to a private address"),
        ("http://127.1/", ["*"], "refused: '127.1' resolves to a private address 127.0.0.1"),
        ("http://2130706433/", ["*"], "refused: '2130706433' resolves to a private address"),
        ("http://10.1.2.3/", ["*"], "refused: '10.1.2.3' resolves to a private address"),
        ("http://100.64.0.1/", ["*"], "refused: '100.64.0.1' resolves to a private address"),
        ("http://0.0.0.0/", ["*"], "refused: '0.0.0.0' resolves to a private address"),
        ("http://224.0.0.1/", ["*"], "refused: '224.0.0.1' resolves to a private address"),
        ("http://[::1]/", ["*"], "refused: '::1' resolves to a private address"),
        ("http://[fe80::1]/", ["*"], "refused: 'fe80::1' resolves to a private address"),
        ("http://[::ffff:127.0.0.1]/", ["*"], "refused: '::ffff:"),
        ("http://[2002:7f00:1::]/", ["*"], "refused: '2002:7f00:1::' resolves to a private"),
        ("http://[64:ff9b::a00:1]/", ["*"], "refused: '64:ff9b::a00:1' resolves to a private"),
        ("http://LocalHost./", ["*"], "refused: 'localhost' resolves to a private address"),
    ],
)
async def test_refused_urls(url: str, hosts: list[str], message: str) -> None:
    with pytest.raises(WebError) as caught:
        await fetch(url, spec(*hosts) if hosts else HttpToolSpec())
    assert str(caught.value).startswith(message), caught.value


def test_allowlist_matches_names_subdomains_and_ip_literals() -> None:
    allowlist = Allowlist.from_hosts(["Example.COM.", "*.wiki.org", "bücher.de", "[::1]"])
    for host in ("example.com", "www.example.com", "a.b.example.com", "wiki.org", "m.wiki.org"):
        assert allowlist.permits(host, 443), host
    assert allowlist.permits("xn--bcher-kva.de", 80)
    assert allowlist.permits("::1", 80) and allowlist.allows_private("::1")
    for host in ("notexample.com", "example.com.evil.org", "org", "127.0.0.1", "localhost"):
        assert not allowlist.permits(host, 80), host
    assert not allowlist.allows_private("example.com")
    # Only IP literals and localhost, listed exactly, may be private; never through "*".
    allowlist = Allowlist.from_hosts(["localhost", "intranet.corp", "*"])
    assert allowlist.allows_private("localhost")
    for host in ("intranet.corp", "a.localhost", "127.0.0.1", "10.0.0.1"):
        assert not allowlist.allows_private(host), host


# --- ports -------------------------------------------------------------------------------------


async def test_a_bare_host_allows_only_the_web_ports(base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1]
    with pytest.raises(WebError) as caught:
        await fetch(f"{base_url}/page.html", spec("127.0.0.1"))
    assert str(caught.value) == (
        f"host '127.0.0.1' on port {port} is not on the http allowlist (allowed: 127.0.0.1)"
    )


async def test_host_port_entry_allows_that_port_only(base_url: str, other_url: str) -> None:
    assert (await fetch(f"{base_url}/page.html", spec(local(base_url)))).status == 200
    with pytest.raises(WebError, match=r"^host '127\.0\.0\.1' on port \d+ is not on"):
        await fetch(f"{other_url}/page.html", spec(local(base_url)))


async def test_redirect_to_another_port_of_an_allowed_host_is_checked(
    base_url: str, other_url: str
) -> None:
    other_port = other_url.rsplit(":", 1)[1]
    url = f"{base_url}/redirect?to={quote(f'{other_url}/page.html', safe='')}"
    with pytest.raises(WebError) as caught:
        await fetch(url, spec(local(base_url)))
    assert str(caught.value).startswith(f"host '127.0.0.1' on port {other_port} is not on")
    result = await fetch(url, spec(local(base_url), local(other_url)))
    assert (result.url, result.title) == (f"{other_url}/page.html", "The Test Page")


def test_allowlist_ports() -> None:
    allowlist = Allowlist.from_hosts(
        ["example.com", "api.example.com:8443", "[::1]:8080", "10.0.0.5", "*:8000"]
    )
    for host, port in [
        ("example.com", 80),
        ("www.example.com", 443),
        ("api.example.com", 8443),
        ("x.api.example.com", 8443),
        ("::1", 8080),
        ("10.0.0.5", 443),
        ("anything.org", 8000),
    ]:
        assert allowlist.permits(host, port), (host, port)
    for host, port in [
        ("example.com", 8080),
        ("example.com", 8443),  # the port belongs to api.example.com only
        ("api.example.com", 22),
        ("::1", 80),
        ("10.0.0.5", 6379),
        ("anything.org", 443),
    ]:
        assert not allowlist.permits(host, port), (host, port)
    assert allowlist.allows_private("::1") and allowlist.allows_private("10.0.0.5")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("example.com:0", "the port must be a number from 1 to 65535"),
        ("example.com:65536", "the port must be a number from 1 to 65535"),
        ("example.com:http", "the port must be a number from 1 to 65535"),
        ("https://example.com", "write a host, not a URL"),
        ("[::1", "write IPv6 as [::1]:8080"),
        (":8080", "no host"),
    ],
)
def test_invalid_allowlist_entries_are_refused(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        split_port(entry)
    with pytest.raises(ValidationError, match=re.escape(f"invalid allow_hosts entry {entry!r}")):
        HttpToolSpec(allow_hosts=[entry])
    assert split_port("[::1]:8080") == ("::1", 8080)
    assert split_port("::1") == ("::1", None)


# --- through goalgraph's MCP server -----------------------------------------------------------


async def test_tools_through_the_mcp_server_over_stdio(base_url: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("alpha\nBeta gamma\n", encoding="utf-8")
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        conn.execute("CREATE TABLE fruit (name TEXT, price REAL)")
        conn.execute("INSERT INTO fruit VALUES ('apple', 1.5)")
    conn.close()
    server = McpServerSpec(
        command=sys.executable,
        args=[
            "-m",
            "goalgraph.tools.server",
            "--workspace",
            str(tmp_path),
            "--allow-host",
            local(base_url),
        ],
    )
    async with ToolBox.open({"goalgraph": server}, start_timeout_s=60) as box:
        assert {"http_get", "sqlite_query", "search_files"} <= {tool.name for tool in box.tools}
        assert box.schemas()["http_get"]["properties"]["url"]["maxLength"] == 2000

        result = await box.call("http_get", {"url": f"{base_url}/page.html"})
        assert result.ok, result.error
        assert "Title: The Test Page" in result.content
        assert "Hello & welcome" in result.content

        result = await box.call("http_get", {"url": "http://evil.com/"})
        assert not result.ok
        assert result.error is not None
        allowed = f"(allowed: {local(base_url)})"
        assert f"host 'evil.com' is not on the http allowlist {allowed}" in result.error

        select = {"database": "shop.db", "sql": "SELECT * FROM fruit"}
        result = await box.call("sqlite_query", select)
        assert (result.ok, result.content) == (True, "name | price\napple | 1.5\n(1 row)")
        delete = {"database": "shop.db", "sql": "DELETE FROM fruit"}
        result = await box.call("sqlite_query", delete)
        assert not result.ok
        assert "refused: sqlite_query only reads" in (result.error or "")

        result = await box.call("search_files", {"query": "GAMMA"})
        assert (result.ok, result.content) == (True, "notes.txt:2: Beta gamma")


CLI = Path(sys.executable).with_name("goalgraph")


def cli_server(*args: str) -> McpServerSpec:
    """``goalgraph mcp-server ARGS`` as an MCP server."""
    return McpServerSpec(command=str(CLI), args=["mcp-server", *args])


async def test_mcp_server_command_allow_host_turns_http_get_on(
    base_url: str, other_url: str, tmp_path: Path
) -> None:
    servers = {
        "goalgraph": cli_server("--workspace", str(tmp_path), "--allow-host", local(base_url))
    }
    async with ToolBox.open(servers, start_timeout_s=60) as box:
        result = await box.call("http_get", {"url": f"{base_url}/page.html"})
        assert result.ok, result.error
        assert "Title: The Test Page" in result.content
        result = await box.call("http_get", {"url": f"{other_url}/page.html"})
        assert "is not on the http allowlist" in (result.error or "")
    async with ToolBox.open({"goalgraph": cli_server()}, start_timeout_s=60) as box:
        result = await box.call("http_get", {"url": f"{base_url}/page.html"})
        assert "http_get is disabled: no host is allowed" in (result.error or "")


async def test_mcp_server_command_reads_the_agent_spec(base_url: str, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "note.txt").write_text("from the spec's workspace", encoding="utf-8")
    spec_file = tmp_path / "agent.yaml"
    spec_file.write_text(
        json.dumps(
            {
                "workspace": str(workspace),
                "tools": {"http": {"allow_hosts": [local(base_url)], "max_bytes": 50}},
            }
        ),
        encoding="utf-8",
    )
    servers = {"goalgraph": cli_server("--spec", str(spec_file))}
    async with ToolBox.open(servers, start_timeout_s=60) as box:
        note = await box.call("read_file", {"path": "note.txt"})
        assert (note.ok, note.content) == (True, "from the spec's workspace")
        page = await box.call("http_get", {"url": f"{base_url}/big.txt"})
        assert page.ok, page.error
        assert "[truncated: only the first 50 bytes of the body were read]" in page.content
