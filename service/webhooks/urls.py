"""Which URLs webhooks may be sent to, and the one address each delivery connects to.

A URL is checked when an endpoint is created or changed and again before every attempt (DNS
answers change). The check resolves the host once; the attempt then connects to the first checked
address, with the URL's host kept as the `Host` header and the TLS server name, so that a second,
different DNS answer (rebinding) is never used. `UrlGuard.check` refuses a URL with `UrlRejected`,
whose `reason` is a stable code:

- `invalid_url`: unparsable, too long, whitespace, a bad port, a malformed or non-ASCII host.
- `scheme_not_allowed`: only `http` and `https`; only `https` in prod.
- `userinfo_not_allowed`: `https://user:pass@host/`.
- `host_required`.
- `noncanonical_ip`: IPv4 written other than dotted decimal (`2130706433`, `0x7f000001`,
  `0177.0.0.1`, `127.1`), refused everywhere: such URLs are tricks, never configuration.
- `unresolvable`: DNS gave no address or failed (fail closed).
- `address_denied`: one of the host's addresses is denied (any one suffices), or the URL names
  the service's own Redis or database (host and port), which is denied whatever the allow-list.

Denied unless the allow-list (`FTM_WEBHOOK_ALLOWED_DESTINATIONS`) says otherwise: every address
that is not global unicast: loopback, private ranges, CGNAT, link-local (169.254/16, fe80::/10),
cloud metadata addresses, unspecified (0.0.0.0/8, ::), multicast, reserved; and IPv6 forms that
embed an IPv4 address (mapped, NAT64, 6to4, Teredo, compatible), judged by the address inside.
An allow-list entry is a network (`10.20.0.0/16`, `fd00::/8`, an address) whose addresses are then
allowed, or a host name (`hooks.internal`, `*.corp.example`) whose addresses may be loopback or
private, never link-local, metadata, unspecified, multicast or reserved. Without the setting, dev
allows loopback (local receivers during `make run`) and prod allows nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from service.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# Kinds of address an allowed host name may not resolve to (only an allowed network lets them by).
ALWAYS_DENIED = frozenset({"unspecified", "link-local", "metadata", "multicast", "reserved"})
DEV_ALLOWED = ("127.0.0.0/8", "::1/128")

_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_UNSPECIFIED_V4 = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


class UrlRejected(ValueError):
    """A URL webhooks may not be sent to; `reason` is a stable code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def address(self) -> IPAddress:
        """The address to connect to: the first one checked."""
        return self.addresses[0]

    def pinned_url(self) -> str:
        """The URL with its host replaced by `address` (the `Host` header keeps the name)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return SplitResult(parts.scheme, f"{literal}:{self.port}", parts.path, parts.query, "").geturl()

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class AllowList:
    """`FTM_WEBHOOK_ALLOWED_DESTINATIONS`, parsed: networks, exact host names, `*.` suffixes."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """Raises ValueError naming the first entry that is neither a network nor a host name."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
                raise ValueError(f"webhook allow-list entry {raw!r} is neither a network nor a host name")
            if entry.startswith("*."):
                suffixes.append("." + name)
            else:
                hosts.add(name)
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes))

    def allows_host(self, host: str) -> bool:
        host = host.lower()
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address (A and AAAA) the system resolver gives for `host`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-mapped, NAT64, 6to4, Teredo or IPv4-compatible forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (1 < int(ip) < 2**32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip: IPAddress) -> str | None:
    """The kind of non-public address `ip` is, or None for a global unicast address."""
    if ip in _METADATA:
        return "metadata"
    if ip.is_unspecified or (ip.version == 4 and ip in _UNSPECIFIED_V4):
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return "loopback"
    if ip.is_reserved or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        return "reserved"
    if ip.is_private or (ip.version == 4 and ip in _CGNAT):
        return "private"
    return None if ip.is_global else "non-global"


@dataclass(frozen=True)
class UrlGuard:
    """The URL rules of one deployment, with the resolver to use (tests pass a stub).

    `own_services` are the (host, port) pairs of the service's Redis and database: a URL naming
    one of them (by name or by an address it resolves to) is denied even where its network is
    allowed."""

    schemes: frozenset[str]
    allow: AllowList = field(default_factory=AllowList)
    own_services: tuple[tuple[str, int], ...] = ()
    resolve: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def for_env(
        cls,
        env: str,
        *,
        allowed: Sequence[str] | None = None,
        own_services: Sequence[tuple[str, int]] = (),
        resolve: Resolver = resolve_host,
    ) -> UrlGuard:
        """`env`'s rules; `allowed` is the allow-list (None: dev allows loopback, prod nothing)."""
        schemes = frozenset({"https"}) if env == "prod" else frozenset({"http", "https"})
        entries = allowed if allowed is not None else (() if env == "prod" else DEV_ALLOWED)
        return cls(
            schemes=schemes,
            allow=AllowList.parse(entries),
            own_services=tuple((host.lower(), port) for host, port in own_services),
            resolve=resolve,
        )

    def check(self, url: str) -> CheckedUrl:
        """The URL and its addresses if webhooks may go there; raises `UrlRejected` otherwise."""
        scheme, host, port, literal = _parse(url, self.schemes)
        addresses = (literal,) if literal is not None else self._resolve(host, port)
        host_allowed = literal is None and self.allow.allows_host(host)
        if self._is_own_service(host, port, addresses):
            raise UrlRejected(
                "address_denied",
                "The URL points to the service's own Redis or database; webhooks may not be sent there.",
            )
        for address in addresses:
            denied = self.denial(address, host_allowed=host_allowed)
            if denied is not None:
                raise UrlRejected(
                    "address_denied",
                    f"The URL points to {_article(denied)} {denied} address; webhooks may not be sent there.",
                )
        return CheckedUrl(url=url, scheme=scheme, host=host, port=port, addresses=addresses)

    def denial(self, ip: IPAddress, *, host_allowed: bool = False) -> str | None:
        """Why `ip` is denied under these rules, or None when it is allowed."""
        inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
        if self.allow.allows_address(ip) or (inner is not None and self.allow.allows_address(inner)):
            return None
        kind = classify(inner if inner is not None else ip)
        if kind is None:
            return None if inner is None else "IPv4-embedding IPv6"
        if host_allowed and kind not in ALWAYS_DENIED:
            return None
        return kind

    def _is_own_service(self, host: str, port: int, addresses: tuple[IPAddress, ...]) -> bool:
        for service_host, service_port in self.own_services:
            if service_port != port:
                continue
            if service_host == host.lower():
                return True
            try:
                theirs = {ipaddress.ip_address(service_host.strip("[]"))}
            except ValueError:
                try:
                    theirs = {
                        ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolve(service_host, port)
                    }
                except (OSError, UnicodeError, ValueError):
                    continue
            if theirs & set(addresses):
                return True
        return False

    def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        try:
            answers = self.resolve(host, port)
            addresses = tuple(ipaddress.ip_address(a.split("%", 1)[0]) for a in answers)
        except (OSError, UnicodeError, ValueError) as error:
            raise UrlRejected("unresolvable", f"The URL's host '{host}' could not be resolved.") from error
        if not addresses:
            raise UrlRejected("unresolvable", f"The URL's host '{host}' has no address.")
        return addresses


def guard_for(settings: Settings, *, resolve: Resolver = resolve_host) -> UrlGuard:
    """The deployment's rules: its env, `FTM_WEBHOOK_ALLOWED_DESTINATIONS`, its Redis and database."""
    allowed = settings.webhook_allowed_destinations
    return UrlGuard.for_env(
        settings.env,
        allowed=allowed.split(",") if allowed is not None else None,
        own_services=own_services(settings.redis_url, settings.database_url),
        resolve=resolve,
    )


def own_services(*urls: str) -> list[tuple[str, int]]:
    """(host, port) of each URL with a network host (the service's Redis and database URLs);
    SQLite files and unparsable URLs give none."""
    found = []
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            continue
        scheme = parts.scheme.split("+", 1)[0]
        default = {"redis": 6379, "rediss": 6379, "postgresql": 5432, "postgres": 5432}.get(scheme)
        if parts.hostname and default is not None:
            found.append((parts.hostname, port or default))
    return found


def _article(word: str) -> str:
    return "an" if word[0] in "aeiouIU" else "a"


def _parse(url: str, schemes: frozenset[str]) -> tuple[str, str, int, IPAddress | None]:
    """(scheme, host, port, the address when the host is an IP literal)."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UrlRejected("invalid_url", "The URL is too long or contains whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRejected("invalid_url", f"The URL is not valid: {error}.") from error
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(sorted(schemes))
        raise UrlRejected("scheme_not_allowed", f"The URL must start with {allowed}://.")
    if "@" in parts.netloc:
        raise UrlRejected("userinfo_not_allowed", "The URL may not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRejected("host_required", "The URL must name a host.")
    if port == 0:
        raise UrlRejected("invalid_url", "The URL's port must be between 1 and 65535.")
    return scheme, host, port or DEFAULT_PORTS[scheme], _literal(host, bracketed="[" in parts.netloc)


def _literal(host: str, *, bracketed: bool) -> IPAddress | None:
    if "%" in host:
        raise UrlRejected("invalid_url", "The URL's host may not contain '%' (no zone ids or escapes).")
    if bracketed:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as error:
            raise UrlRejected("invalid_url", "Only IPv6 addresses may be written in brackets.") from error
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            return ipaddress.IPv4Address(host)
        except ValueError as error:
            raise UrlRejected(
                "noncanonical_ip", "Write IPv4 addresses in dotted-decimal form, like 192.0.2.10."
            ) from error
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRejected(
            "invalid_url", "The URL's host is not a valid host name (use the xn-- form of IDNs)."
        )
    return None
