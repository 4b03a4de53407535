"""Outbound HTTP to addresses the caller has checked: an aiohttp client whose connections go only
to the address pinned for each request, never to a fresh DNS answer.

DESIGN: outbound HTTP used to be the proxy's alone (`service.providers.relay`, aiohttp, chosen by
measurement: an httpx `AsyncClient` managed about a tenth of aiohttp's requests per second on
this project's machines, encode/httpx#3215). Webhook delivery needs the same speed (issue 12: 500
deliveries/s per worker process) plus SSRF rules the relay does not have, so this module is the
second, small place allowed to import aiohttp (the import contract in pyproject.toml names both).
Callers see no aiohttp type: `PinnedClient.post` takes a URL, the address to connect to and the
request, and returns an `Answer` or raises `OutboundError` (`OutboundTimeout` for a timeout).

How the pin holds: the URL keeps its host name, so the `Host` header, the TLS server name (SNI)
and the certificate check are all on the name; the connector's resolver is a `PinnedResolver`
that answers the address pinned for (host, port) by the request being made and refuses a host it
has no pin for (fail closed: no system DNS is ever asked). The DNS cache is off, so every new
connection asks the resolver. A kept-alive connection is reused only for the same host and port,
and it was opened to an address pinned, so checked, for that host by an earlier request. Pins of
concurrent requests to one host may differ (a DNS change between two checks); whichever is used,
it was checked. Redirects are never followed, proxies from the environment are ignored, every
request has a total timeout, and only the first `read_limit` bytes of an answer are read.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL


class OutboundError(Exception):
    """No answer: the connection failed, was refused or dropped, or the URL is unusable."""


class OutboundTimeout(OutboundError):
    """No answer within the timeout."""


@dataclass(frozen=True)
class Answer:
    """The receiver's status, its headers (names lower-cased) and the first bytes of its body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class PinnedResolver(AbstractResolver):
    """Answers, for a host and port, the address last pinned for them; refuses any other host."""

    def __init__(self) -> None:
        self._pins: dict[tuple[str, int], str] = {}

    def pin(self, host: str, port: int, address: str) -> None:
        self._pins[(host.lower(), port)] = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._pins.get((host.lower().rstrip("."), port))
        if address is None:
            raise OSError(f"no checked address for {host}:{port}; refusing to resolve it")
        ip_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=ip_family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        self._pins.clear()


class PinnedClient:
    """One aiohttp session (made on entering, on the running loop) with at most `connections`
    open connections, `timeout_s` per request, the given TLS context (tests pass one trusting
    their own certificate authority)."""

    def __init__(
        self,
        *,
        connections: int = 100,
        timeout_s: float = 15.0,
        user_agent: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._user_agent = user_agent
        self._tls = tls if tls is not None else ssl.create_default_context()
        self._resolver = PinnedResolver()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PinnedClient:
        connector = aiohttp.TCPConnector(
            limit=self._connections,
            resolver=self._resolver,
            use_dns_cache=False,
            ssl=self._tls,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=False,
            headers={"User-Agent": self._user_agent},
            auto_decompress=False,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        url: str,
        *,
        address: str,
        body: bytes,
        headers: Mapping[str, str],
        read_limit: int,
    ) -> Answer:
        """POST `body` to `url`, connecting to `address` (an IP the caller checked for the URL's
        host); no redirect is followed; at most `read_limit` bytes of the answer are read."""
        if self._session is None:
            raise RuntimeError("PinnedClient is used outside `async with`")
        try:
            target = URL(url)
            if target.host is None or target.port is None:
                raise OutboundError(f"the URL {url!r} has no host")
            self._resolver.pin(target.host, target.port, address)
            async with self._session.post(
                target, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                kept = await _read_prefix(response.content, read_limit)
                answer_headers = {name.lower(): value for name, value in response.headers.items()}
                return Answer(response.status, answer_headers, kept)
        except TimeoutError as error:
            raise OutboundTimeout(f"timeout: {type(error).__name__}") from error
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise OutboundError(f"{type(error).__name__}: {error}") from error


async def _read_prefix(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to `limit` bytes of the body; the rest is not read (the connection is then closed)."""
    kept = bytearray()
    while len(kept) < limit:
        chunk = await content.read(limit - len(kept))
        if not chunk:
            break
        kept.extend(chunk)
    return bytes(kept)
