"""Which URLs webhooks may be sent to: the URL's syntax, then every address its host resolves to.

A URL is checked when an endpoint is created or changed and again before every delivery (DNS
answers change). `UrlGuard.check` refuses a URL with `UrlRejected`, whose `reason` is a stable code:

- `invalid_url`: unparsable, too long, whitespace, a bad port, a malformed or non-ASCII host.
- `scheme_not_allowed`: only `http` and `https`; only `https` in prod.
- `userinfo_not_allowed`: `https://user:pass@host/`.
- `host_required`.
- `noncanonical_ip`: IPv4 written other than dotted decimal (`2130706433`, `0x7f000001`,
  `0177.0.0.1`, `127.1`), refused everywhere: such URLs are tricks, never configuration.
- `unresolvable`: DNS gave no address or failed (fail closed).
- `address_denied`: one of the host's addresses is denied (any one suffices):
  always: unspecified (0.0.0.0/8, ::), link-local (169.254/16, fe80::/10) and cloud metadata
  addresses, multicast, reserved; in prod also loopback, private ranges, CGNAT, every other
  non-global range and IPv6 forms that embed an IPv4 address (in dev those are judged by the
  embedded address, so `[::ffff:127.0.0.1]` is loopback).

Dev allows loopback and private targets so that local receivers work. Per-tenant allow-lists,
port lists and pinning the connection to the checked address belong in `UrlGuard` (later issue).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
ALWAYS_DENIED = frozenset({"unspecified", "link-local", "metadata", "multicast", "reserved"})

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
    """The URL rules of one environment, with the resolver to use (tests pass a stub)."""

    schemes: frozenset[str]
    allow_internal: bool
    resolve: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def for_env(cls, env: str, *, resolve: Resolver = resolve_host) -> UrlGuard:
        if env == "prod":
            return cls(schemes=frozenset({"https"}), allow_internal=False, resolve=resolve)
        return cls(schemes=frozenset({"http", "https"}), allow_internal=True, resolve=resolve)

    def check(self, url: str) -> CheckedUrl:
        """The URL and its addresses if webhooks may go there; raises `UrlRejected` otherwise."""
        scheme, host, port, literal = _parse(url, self.schemes)
        addresses = (literal,) if literal is not None else self._resolve(host, port)
        for address in addresses:
            denied = self.denial(address)
            if denied is not None:
                raise UrlRejected(
                    "address_denied",
                    f"The URL points to {_article(denied)} {denied} address; webhooks may not be sent there.",
                )
        return CheckedUrl(url=url, scheme=scheme, host=host, port=port, addresses=addresses)

    def denial(self, ip: IPAddress) -> str | None:
        """Why `ip` is denied under these rules, or None when it is allowed."""
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                if not self.allow_internal:
                    return "IPv4-embedding IPv6"
                ip = inner
        kind = classify(ip)
        if kind is None or (self.allow_internal and kind not in ALWAYS_DENIED):
            return None
        return kind

    def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        try:
            answers = self.resolve(host, port)
            addresses = tuple(ipaddress.ip_address(a.split("%", 1)[0]) for a in answers)
        except (OSError, UnicodeError, ValueError) as error:
            raise UrlRejected("unresolvable", f"The URL's host '{host}' could not be resolved.") from error
        if not addresses:
            raise UrlRejected("unresolvable", f"The URL's host '{host}' has no address.")
        return addresses


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
