"""The engine of the ``http_get`` tool: fetch one web page from an allowlisted host, safely.

Every URL, the first and each redirect hop (at most ``MAX_REDIRECTS``), must pass these rules:

- the scheme is http or https, and the URL carries no user info (``user:pw@host``);
- the host and port are on the allowlist (``goalgraph.tools.allowlist``): ``host`` allows the web
  ports 80 and 443, ``host:port`` that port; a name allows itself and its subdomains
  (``example.com`` allows ``www.example.com``), ``*`` allows every public host, an empty list
  refuses everything;
- every address the host resolves to is public. Private, loopback, link-local, multicast,
  reserved and shared addresses (also when embedded in IPv6: IPv4-mapped, 6to4, Teredo, NAT64) are
  refused, unless the allowlist names the host itself and it is an IP literal or ``localhost``;
  ``*`` never allows them. That is how tests allow a server on 127.0.0.1, deliberately.

The request then goes to the checked address itself (the URL's host is replaced by it, while the
Host header and TLS SNI keep the name and the certificate is verified against the name), so a DNS
answer that changes between check and connect (DNS rebinding) cannot reach another address.
Environment proxies are ignored for the same reason. The body is streamed and cut at
``max_bytes`` (after gzip decoding), and the whole fetch, redirects included, is bounded by
``timeout_s``; so is the conversion of an HTML body to text (``goalgraph.tools.html_text``), which
gets what is left of that time, at least ``MIN_CONVERT_S``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import zlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import httpx

from goalgraph.spec import HttpToolSpec
from goalgraph.tools.allowlist import Allowlist, IPAddress, parse_ip
from goalgraph.tools.html_text import html_to_text

__all__ = [
    "MAX_REDIRECTS",
    "MIN_CONVERT_S",
    "Allowlist",
    "FetchResult",
    "WebError",
    "check_url",
    "fetch",
    "html_to_text",
]

MAX_REDIRECTS = 5
"""Most redirects one fetch follows."""
MIN_CONVERT_S = 1.0
"""Seconds the conversion of a body to text gets even when the download used up the time limit."""

_USER_AGENT = "goalgraph-http_get/0.1"
_NAT64 = IPv6Network("64:ff9b::/96")
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-ndjson",
        "application/csv",
        "application/sql",
        "application/graphql",
    }
)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class WebError(ValueError):
    """A fetch that was refused or failed; the message says why in one line."""


@dataclass(frozen=True)
class FetchResult:
    """What one fetch returned, ready to show to a model.

    Attributes:
        url: The final URL, after redirects.
        status: The HTTP status code.
        reason: The status phrase, e.g. ``OK``.
        content_type: The media type without parameters, e.g. ``text/html``.
        text: Readable text of the body (a short description for binary bodies).
        title: The HTML title, when there is one.
        truncated: ``True`` when the body was cut at ``max_bytes``.
        size: Bytes of body read (after decoding gzip).
    """

    url: str
    status: int
    reason: str
    content_type: str
    text: str
    title: str | None = None
    truncated: bool = False
    size: int = 0

    def render(self) -> str:
        """Return the result as the tool's text: URL, status, title, body, truncation note."""
        lines = [f"URL: {self.url}", f"Status: {self.status} {self.reason}".rstrip()]
        if self.title:
            lines.append(f"Title: {self.title}")
        lines += ["", self.text or "(empty body)"]
        if self.truncated:
            lines.append(f"[truncated: only the first {self.size} bytes of the body were read]")
        return "\n".join(lines)


async def fetch(url: str, spec: HttpToolSpec) -> FetchResult:
    """Fetch ``url`` under the rules of the module docstring and return its readable text.

    Non-2xx answers are results too (their status is in ``FetchResult.status``).

    Args:
        url: An http or https URL.
        spec: The allowlist and the size and time caps.

    Returns:
        The final URL, status, title and readable text.

    Raises:
        WebError: If a rule refuses the URL or a redirect, or the fetch fails or times out.
    """
    if not spec.allow_hosts:
        raise WebError("http_get is disabled: no host is allowed (set tools.http.allow_hosts)")
    try:
        allowlist = Allowlist.from_hosts(spec.allow_hosts)
    except ValueError as exc:
        raise WebError(str(exc)) from None
    deadline = time.monotonic() + spec.timeout_s
    try:
        async with asyncio.timeout(spec.timeout_s):
            download = await _download(_parse_url(url), spec, allowlist)
    except (TimeoutError, httpx.TimeoutException):
        raise WebError(f"timed out: fetching {url} took longer than {spec.timeout_s:g} s") from None
    # Parsing and decoding are CPU work; keep them off the event loop.
    convert_until = max(deadline, time.monotonic() + MIN_CONVERT_S)
    return await asyncio.to_thread(download.to_result, convert_until)


@dataclass(frozen=True)
class _Download:
    """The raw outcome of the network part of a fetch."""

    url: str
    status: int
    reason: str
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool
    binary_note: str | None = None

    def to_result(self, deadline: float | None = None) -> FetchResult:
        """Decode and convert the body by content type; HTML conversion stops at ``deadline``
        (a ``time.monotonic()`` value)."""
        mime = self.content_type
        title = None
        if self.binary_note is not None or (not mime and b"\x00" in self.body[:1024]):
            text = self.binary_note or _binary_note(mime or "unknown type", len(self.body))
        else:
            text = self.body.decode(self._encoding(), errors="replace")
            if mime in _HTML_TYPES:
                text, title = html_to_text(text, deadline=deadline)
            elif _is_json(mime) and not self.truncated:
                text = _pretty_json(text)
        return FetchResult(
            url=self.url,
            status=self.status,
            reason=self.reason,
            content_type=mime,
            text=text,
            title=title,
            truncated=self.truncated,
            size=len(self.body),
        )

    def _encoding(self) -> str:
        candidates = [self.charset]
        if self.content_type in _HTML_TYPES:
            match = _META_CHARSET.search(self.body[:2048])
            candidates.append(match.group(1).decode("ascii") if match else None)
        for name in candidates:
            if name and _known_codec(name):
                return name
        return "utf-8"


async def _download(url: httpx.URL, spec: HttpToolSpec, allowlist: Allowlist) -> _Download:
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=spec.timeout_s
    ) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            addresses = await _check(url, allowlist)
            response = await _send(client, url, addresses)
            try:
                target = _redirect_target(response, url)
                if target is None:
                    return await _read(response, url, spec.max_bytes)
            finally:
                await response.aclose()
            url = target
    raise WebError(f"too many redirects: more than {MAX_REDIRECTS}, last to {url}")


def _parse_url(text: str) -> httpx.URL:
    try:
        return httpx.URL(text.strip())
    except httpx.InvalidURL as exc:
        raise WebError(f"invalid URL {text!r}: {exc}") from None


def check_url(url: httpx.URL | str, allowlist: Allowlist) -> str:
    """Apply the rules that need no DNS lookup: http(s), no user info, a host and port on the
    allowlist.

    The safety policy calls this before a fetch is allowed; ``fetch`` calls it again on every
    hop, then also resolves the host and refuses private addresses.

    Returns:
        The host, as lower-case ASCII (IDNA) without a trailing dot.

    Raises:
        WebError: The URL breaks a rule; the message says which.
    """
    if isinstance(url, str):
        url = _parse_url(url)
    if url.scheme not in ("http", "https"):
        shown = f"{url.scheme}:" if url.scheme else "a URL without a scheme"
        raise WebError(f"only http:// and https:// URLs can be fetched, not {shown}")
    if url.userinfo:
        raise WebError(f"refused: URLs with user info (user@host) are not allowed: {url}")
    host = _host_of(url)
    if not host:
        raise WebError(f"URL has no host: {url}")
    if not allowlist.permits(host, _port_of(url)):
        where = f"host {host!r}" if url.port is None else f"host {host!r} on port {url.port}"
        raise WebError(f"{where} is not on the http allowlist (allowed: {allowlist.describe()})")
    return host


async def _check(url: httpx.URL, allowlist: Allowlist) -> list[IPAddress]:
    """Apply the rules to one URL; return the addresses it may be fetched from."""
    host = check_url(url, allowlist)
    addresses = await _resolve(host, _port_of(url))
    if not allowlist.allows_private(host):
        for ip in addresses:
            if not _is_public(ip):
                raise WebError(f"refused: {host!r} resolves to a private address {ip}")
    return addresses


def _port_of(url: httpx.URL) -> int:
    """Return the port a request for ``url`` goes to (the scheme's default when none is given)."""
    return url.port or _DEFAULT_PORTS[url.scheme]


def _host_of(url: httpx.URL) -> str:
    """Return the URL's host as lower-case ASCII (IDNA) without a trailing dot."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


async def _resolve(host: str, port: int) -> list[IPAddress]:
    ip = parse_ip(host)
    if ip is not None:
        return [ip]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WebError(f"cannot resolve host {host!r}: {reason}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = parse_ip(str(info[4][0]).split("%")[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise WebError(f"cannot resolve host {host!r}: no addresses")
    return addresses


def _is_public(ip: IPAddress) -> bool:
    """Return whether ``ip`` is a public unicast address, looking inside IPv6 wrappings."""
    if isinstance(ip, IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(inner is not None and not _is_public(inner) for inner in embedded):
            return False
    # is_global is True for some multicast ranges (224.0.0.1), hence the second test.
    return ip.is_global and not ip.is_multicast


async def _send(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress]
) -> httpx.Response:
    """Send GET ``url`` to the checked addresses in turn; return the first response."""
    host = _host_of(url)
    headers = {
        "Host": url.netloc.decode("ascii"),
        "User-Agent": _USER_AGENT,
        "Accept": "text/html,application/json;q=0.9,text/*;q=0.8,*/*;q=0.5",
        "Accept-Encoding": "gzip",
    }
    # Without an IP literal host, SNI and certificate checks use the name, not the address.
    extensions = {} if parse_ip(host) is not None else {"sni_hostname": host}
    failure = ""
    for ip in addresses:
        request = client.build_request(
            "GET", url.copy_with(host=str(ip)), headers=headers, extensions=extensions
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            failure = str(exc) or type(exc).__name__
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            raise WebError(f"request to {host!r} failed: {exc or type(exc).__name__}") from None
    raise WebError(f"cannot connect to {host!r}: {failure}")


def _redirect_target(response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    if response.status_code not in (301, 302, 303, 307, 308):
        return None
    location = response.headers.get("location")
    if not location:
        return None
    try:
        return url.join(location)
    except httpx.InvalidURL as exc:
        raise WebError(f"invalid redirect location {location!r}: {exc}") from None


async def _read(response: httpx.Response, url: httpx.URL, max_bytes: int) -> _Download:
    content_type = response.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    body, truncated, note = b"", False, None
    if mime and not _is_text(mime):
        # Binary bodies are described, not downloaded.
        length = response.headers.get("content-length")
        note = _binary_note(mime, int(length) if length and length.isdigit() else None)
    else:
        body, truncated = await _read_body(response, max_bytes)
    return _Download(
        url=str(url),
        status=response.status_code,
        reason=response.reason_phrase,
        content_type=mime,
        charset=response.charset_encoding,
        body=body,
        truncated=truncated,
        binary_note=note,
    )


async def _read_body(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Read at most ``max_bytes`` of decoded body; return it and whether more was left."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise WebError(f"unsupported Content-Encoding {encoding!r}")
    # Own gzip decoding with an output cap: a small compressed body cannot blow up in memory.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if "gzip" in encoding else None
    parts: list[bytes] = []
    size = raw_size = 0
    async for chunk in response.aiter_raw():
        raw_size += len(chunk)
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk, max_bytes - size + 1)
            except zlib.error as exc:
                raise WebError(f"corrupt gzip body: {exc}") from None
        parts.append(chunk)
        size += len(chunk)
        if size > max_bytes or raw_size > max_bytes:
            return b"".join(parts)[:max_bytes], True
    return b"".join(parts), False


def _is_text(mime: str) -> bool:
    return (
        mime.startswith("text/")
        or mime in _TEXT_TYPES
        or mime in _HTML_TYPES
        or mime.endswith(("+json", "+xml"))
    )


def _is_json(mime: str) -> bool:
    return mime == "application/json" or mime.endswith("+json")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    except ValueError:
        return text


def _binary_note(mime: str, size: int | None) -> str:
    shown = f"{size} bytes" if size is not None else "size unknown"
    return f"[binary content: {mime}, {shown}; not shown]"


def _known_codec(name: str) -> bool:
    try:
        # Refuses bytes-to-bytes codecs (base64, zlib) too, not only unknown names.
        b"a".decode(name, errors="ignore")
    except LookupError:
        return False
    return True
