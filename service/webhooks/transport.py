"""Sending one signed webhook request, to the address its URL check approved, and reading the
answer: what an attempt's outcome is made of.

`Outgoing` is a request ready to go: the URL as registered (its host name), the checked address
to connect to, the signed headers. Two senders carry it, both never following redirects, ignoring
proxy settings from the environment, with a 15 s timeout, reading at most `MAX_RESPONSE_BODY`
bytes of the answer, and never raising for a network failure (a `SendResult` with an `error`):

- `PinnedSender`, what the workers deliver with: `service.outbound.pinned.PinnedClient`
  (aiohttp), connecting to the pinned address through its resolver, the URL's name kept for the
  Host header, TLS server name and certificate check. Chosen by measurement (`bench.webhooks`):
  the httpx `AsyncClient` was the limit of a worker's delivery rate.
- `send` and `HttpxSender` (httpx, sync and async): the URL's host replaced by the address, the
  `Host` header and the `sni_hostname` extension set to the name. The API's test send (one
  request in a sync route) uses `send`; `HttpxSender` stays for tests with `httpx.MockTransport`
  and for the benchmark's side-by-side figure.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from service.outbound.pinned import Answer, OutboundError, OutboundTimeout, PinnedClient
from service.webhooks.schedule import parse_retry_after
from service.webhooks.signing import webhook_headers
from service.webhooks.urls import CheckedUrl

USER_AGENT = "finetune-manager-webhooks/1.0"
TIMEOUT_S = 15.0
TIMEOUT = httpx.Timeout(TIMEOUT_S)
MAX_ERROR_LENGTH = 500
MAX_RESPONSE_BODY = 1024  # bytes of the receiver's answer kept in the delivery log


@dataclass(frozen=True)
class SendResult:
    """What one POST gave: the receiver's status, or the error that prevented an answer."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None = None
    response_body: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


BLOCKED = SendResult(None, "blocked_destination", 0)


@dataclass(frozen=True)
class Outgoing:
    """One request, ready to go: the URL as registered, the checked address to connect to, the
    headers (the `Host` header keeps the name), and, for httpx, the pinned URL and TLS name."""

    url: str
    address: str
    pinned_url: str
    headers: dict[str, str]
    extensions: dict[str, str]

    @classmethod
    def of(
        cls, checked: CheckedUrl, *, msg_id: str, body: bytes, secrets: Sequence[str], now: datetime
    ) -> Outgoing:
        headers = {
            "Host": checked.host_header(),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **webhook_headers(msg_id=msg_id, timestamp=int(now.timestamp()), body=body, secrets=secrets),
        }
        extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
        return cls(checked.url, str(checked.address), checked.pinned_url(), headers, extensions)


class Sender(Protocol):
    """Makes one attempt's request; never raises for network failures."""

    async def send(self, out: Outgoing, body: bytes, *, now: datetime) -> SendResult: ...


class PinnedSender:
    """Sends through a `PinnedClient` (aiohttp): what the workers use."""

    def __init__(self, client: PinnedClient) -> None:
        self._client = client

    async def send(self, out: Outgoing, body: bytes, *, now: datetime) -> SendResult:
        started = time.monotonic()
        headers = {name: value for name, value in out.headers.items() if name != "Host"}
        try:
            answer = await self._client.post(
                out.url, address=out.address, body=body, headers=headers, read_limit=MAX_RESPONSE_BODY
            )
        except OutboundTimeout as error:
            return SendResult(None, str(error)[:MAX_ERROR_LENGTH], _ms_since(started))
        except OutboundError as error:
            return SendResult(None, f"connection_error: {error}"[:MAX_ERROR_LENGTH], _ms_since(started))
        return _result(answer.status, answer.headers.get("retry-after"), _text(answer), started, now)


def pinned_client(connections: int) -> PinnedClient:
    """The delivery client of a worker: `connections` at most, 15 s per request."""
    return PinnedClient(connections=connections, timeout_s=TIMEOUT_S, user_agent=USER_AGENT)


def http_client() -> httpx.Client:
    """The client the test route uses: 15 s timeout, no redirects, no proxy settings from the env."""
    return httpx.Client(
        timeout=TIMEOUT, follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT}
    )


def async_http_client(connections: int = 100) -> httpx.AsyncClient:
    """As `http_client`, asynchronous, `connections` at most (for `HttpxSender`)."""
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def send(http: httpx.Client, out: Outgoing, body: bytes, *, now: datetime) -> SendResult:
    """POST `body` as `out` says, through httpx; never raises for network failures."""
    started = time.monotonic()
    try:
        with http.stream(
            "POST",
            out.pinned_url,
            content=body,
            headers=out.headers,
            extensions=out.extensions,
            timeout=TIMEOUT,
            follow_redirects=False,
        ) as response:
            answer = _read_prefix(response.iter_bytes())
    except httpx.TimeoutException as error:
        return SendResult(None, f"timeout: {type(error).__name__}", _ms_since(started))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return _connection_error(error, started)
    return _result(response.status_code, response.headers.get("retry-after"), answer, started, now)


class HttpxSender:
    """`send` through an `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, out: Outgoing, body: bytes, *, now: datetime) -> SendResult:
        started = time.monotonic()
        try:
            async with self._http.stream(
                "POST",
                out.pinned_url,
                content=body,
                headers=out.headers,
                extensions=out.extensions,
                timeout=TIMEOUT,
                follow_redirects=False,
            ) as response:
                answer = await _read_prefix_async(response.aiter_bytes())
        except httpx.TimeoutException as error:
            return SendResult(None, f"timeout: {type(error).__name__}", _ms_since(started))
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            return _connection_error(error, started)
        return _result(response.status_code, response.headers.get("retry-after"), answer, started, now)


def _connection_error(error: Exception, started: float) -> SendResult:
    message = f"connection_error: {type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]
    return SendResult(None, message, _ms_since(started))


def _result(status: int, retry_after: str | None, answer: str, started: float, now: datetime) -> SendResult:
    error_code = "redirect_not_followed" if 300 <= status < 400 else None
    delay = parse_retry_after(retry_after, now=now)
    return SendResult(status, error_code, _ms_since(started), delay, answer)


def _text(answer: Answer) -> str:
    return answer.body[:MAX_RESPONSE_BODY].decode("utf-8", errors="replace")


def _read_prefix(chunks: Iterable[bytes]) -> str:
    """The first `MAX_RESPONSE_BODY` bytes of a response, decoded leniently; the rest is not read."""
    kept = bytearray()
    for chunk in chunks:
        kept.extend(chunk[: MAX_RESPONSE_BODY - len(kept)])
        if len(kept) >= MAX_RESPONSE_BODY:
            break
    return kept.decode("utf-8", errors="replace")


async def _read_prefix_async(chunks: AsyncIterator[bytes]) -> str:
    kept = bytearray()
    async for chunk in chunks:
        kept.extend(chunk[: MAX_RESPONSE_BODY - len(kept)])
        if len(kept) >= MAX_RESPONSE_BODY:
            break
    return kept.decode("utf-8", errors="replace")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
