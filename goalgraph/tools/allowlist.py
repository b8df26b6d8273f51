"""The ``http_get`` allowlist: which hosts, on which ports, a fetch may reach.

An entry is ``host`` or ``host:port``. A bare ``host`` allows the standard web ports 80 and 443
only, so listing a host does not open every service it runs; ``host:port`` allows that one port.
A name also allows its subdomains (``example.com`` allows ``www.example.com``; ``*.example.com``
means the same); an IP literal (``10.0.0.5``, ``[::1]``, ``[::1]:8080``) allows that address; ``*``
allows every public host (``*:8080``: on port 8080).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

import httpx

__all__ = ["WEB_PORTS", "Allowlist", "IPAddress", "parse_ip", "split_port"]

IPAddress = IPv4Address | IPv6Address

WEB_PORTS = frozenset({80, 443})
"""The ports an entry without a port allows."""


def split_port(entry: str) -> tuple[str, int | None]:
    """Split an allowlist entry into its host and port (``None`` when it names no port).

    ``[::1]:8080`` and ``example.com:8080`` name a port; ``::1`` and ``[::1]`` do not.

    Raises:
        ValueError: The port is not a number from 1 to 65535, or the host is empty.
    """
    text = entry.strip()
    if "/" in text:
        raise ValueError(f"invalid allow_hosts entry {entry!r}: write a host, not a URL")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid allow_hosts entry {entry!r}: write IPv6 as [::1]:8080")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address (which cannot carry a port)
        host, port_text = text, None
    if not host:
        raise ValueError(f"invalid allow_hosts entry {entry!r}: no host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(
            f"invalid allow_hosts entry {entry!r}: the port must be a number from 1 to 65535"
        )
    return host, int(port_text)


@dataclass(frozen=True)
class Allowlist:
    """The hosts and ports ``http_get`` may fetch, normalised from ``HttpToolSpec.allow_hosts``.

    Attributes:
        entries: The entries as configured (for error messages).
        names: ``(name, port)`` pairs: lower-case ASCII (IDNA) host names, each also allowing
            its subdomains, and a port (``None``: ``WEB_PORTS``).
        ips: ``(address, port)`` pairs: IP literals, each allowing exactly that address, even a
            private one.
        any_public: The ports ``*`` entries allow every public host on (``None``: ``WEB_PORTS``).
    """

    entries: tuple[str, ...]
    names: frozenset[tuple[str, int | None]]
    ips: frozenset[tuple[IPAddress, int | None]]
    any_public: frozenset[int | None]

    @classmethod
    def from_hosts(cls, hosts: list[str]) -> Allowlist:
        """Build an allowlist from configured entries (``example.com``, ``x.org:8080``, ``::1``).

        Raises:
            ValueError: An entry has an invalid port.
        """
        names: set[tuple[str, int | None]] = set()
        ips: set[tuple[IPAddress, int | None]] = set()
        wildcard: set[int | None] = set()
        for entry in hosts:
            host, port = split_port(entry)
            text = host.lower().removeprefix("*.").rstrip(".")
            ip = parse_ip(text)
            if ip is not None:
                ips.add((ip, port))
            elif text == "*":
                wildcard.add(port)
            elif text:
                names.add((_idna(text), port))
        return cls(tuple(hosts), frozenset(names), frozenset(ips), frozenset(wildcard))

    def permits(self, host: str, port: int) -> bool:
        """Return whether ``host`` (normalised) on ``port`` is listed, as itself, a subdomain,
        or by ``*``."""
        if any(_port_ok(allowed, port) for allowed in self.any_public):
            return True
        ip = parse_ip(host)
        if ip is not None:
            return any(listed == ip and _port_ok(allowed, port) for listed, allowed in self.ips)
        return any(
            (host == name or host.endswith("." + name)) and _port_ok(allowed, port)
            for name, allowed in self.names
        )

    def allows_private(self, host: str) -> bool:
        """Return whether ``host`` may resolve to a non-public address: it is listed itself (on
        any port) and is an IP literal or ``localhost``."""
        ip = parse_ip(host)
        if ip is not None:
            return any(listed == ip for listed, _ in self.ips)
        return host == "localhost" and any(name == "localhost" for name, _ in self.names)

    def describe(self) -> str:
        """Return the entries for an error message."""
        return ", ".join(self.entries) if self.entries else "none"


def _port_ok(allowed: int | None, port: int) -> bool:
    return port in WEB_PORTS if allowed is None else port == allowed


def parse_ip(text: str) -> IPAddress | None:
    """Return ``text`` as an IP address, or ``None`` when it is not one."""
    try:
        return ip_address(text)
    except ValueError:
        return None


def _idna(name: str) -> str:
    try:
        return httpx.URL(f"http://{name}/").raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, UnicodeError):
        return name
