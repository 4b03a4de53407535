"""A pooled HTTP/1.1 client for the proxy's upstream: asyncio transports and httptools' parser
(llhttp, the parser uvicorn serves with), nothing else on a request's path.

The proxy relays every inference request, so its client's cost is the proxy's cost: measured by
`bench/proxy_clients.py`, aiohttp spends most of a relayed JSON request's client CPU in its
request and response objects, its tracing hooks and its stream reader. This client does what
the relay needs and no more: `POST` a body as bytes, hand back the status, the headers and the
body, whole (`read`) or as the bytes that have arrived (`readany`, for streams), with keep-alive
connections pooled per event loop. It does not follow redirects, decompress (it sends no
`Accept-Encoding`, so the answer's bytes are the provider's), use proxies from the environment,
or retry: a request that fails is the relay's to report.

- A connection is opened on demand (up to `max_connections`; beyond, a request waits for one
  within the timeout) and goes back to the pool when its answer was read to its end and the
  server keeps it alive; one idle for `idle_s` is not reused (servers close idle connections,
  and a request written to one the server is closing would fail).
- `timeout_s` bounds connecting, waiting for a free connection, and each wait for the answer's
  next bytes: `TimeoutError`, and the connection is closed.
- Anything else that stops an answer (refused, reset, closed early, a malformed response) is
  `UpstreamError`; so is a request header that would break the request's framing.
- A stream's bytes are buffered only up to `_HIGH_WATER` bytes: past it the socket is no longer
  read until the reader catches up.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 256 * 1024
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


class UpstreamError(Exception):
    """The upstream could not be reached, or its answer broke off or was not HTTP."""


def _header_lines(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS) or ":" in name:
            raise UpstreamError(f"The request header {name!r} is not a valid HTTP header.")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Pool:
    """Keep-alive connections to one upstream (`base_url`), per event loop, and `post` to send a
    request over one of them. `headers` go with every request; `https` checks certificates with
    `ssl_context` (the system's by default); `aclose` closes the running loop's connections."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_connections: int,
        idle_s: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        secure = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if secure else 80)
        self.prefix = url.path.rstrip("/")
        self.ssl = (ssl_context or ssl.create_default_context()) if secure else None
        default_port = self.port == (443 if secure else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._fixed = {"Host": host if default_port else f"{host}:{self.port}", **headers}
        self._head_lines = _header_lines(self._fixed)
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.idle_s = idle_s
        self._loops: dict[asyncio.AbstractEventLoop, _LoopPool] = {}

    async def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
        """Send `POST {base path}{path}` with `body`; the answer once its status and headers have
        come (its body still to be read). `headers` replace the pool's headers of the same names
        on this request."""
        if headers:
            replaced = {name.lower() for name in headers}
            kept = {name: value for name, value in self._fixed.items() if name.lower() not in replaced}
            lines = _header_lines({**kept, **headers})
        else:
            lines = self._head_lines
        request = b"".join(
            (
                b"POST ",
                (self.prefix + path).encode("ascii"),
                b" HTTP/1.1\r\n",
                lines,
                b"Content-Length: ",
                str(len(body)).encode(),
                b"\r\n\r\n",
                body,
            )
        )
        loop = asyncio.get_running_loop()
        pool = self._loops.get(loop)
        if pool is None:
            pool = self._loops[loop] = _LoopPool(self, loop)
        connection = await pool.acquire()
        return await connection.send(request)

    async def aclose(self) -> None:
        pool = self._loops.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            pool.close()


class _LoopPool:
    """One event loop's connections to the upstream: the idle ones, newest last, the number
    open, and the requests waiting for one."""

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self.closed = False

    async def acquire(self) -> _Connection:
        idle = self.idle
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable(now):
                return connection
            connection.close()
        if self.open >= self.pool.max_connections:
            waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(waiter, self.pool.timeout_s)
            finally:
                if not waiter.done():
                    self.waiters.remove(waiter)
            if handed is not None:
                return handed
            return await self.acquire()  # a connection closed: room to open one
        return await self._connect()

    async def _connect(self) -> _Connection:
        pool = self.pool
        self.open += 1
        try:
            _, connection = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self),
                    pool.host,
                    pool.port,
                    ssl=pool.ssl,
                    server_hostname=pool.host if pool.ssl else None,
                ),
                pool.timeout_s,
            )
        except OSError as error:
            self._freed()
            raise UpstreamError(f"could not connect: {error}") from None
        except BaseException:
            self._freed()
            raise
        return connection

    def release(self, connection: _Connection) -> None:
        """An answer read to its end on a connection the server keeps alive."""
        if self.closed:
            connection.close()
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = time.monotonic()
        self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        """A connection closed (by either side): it no longer counts, and a waiter may open one."""
        try:
            self.idle.remove(connection)
        except ValueError:
            pass
        self._freed()

    def _freed(self) -> None:
        self.open -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop().close()


class _Connection(asyncio.Protocol):
    """One keep-alive connection, and the answer it is reading (at most one at a time)."""

    def __init__(self, pool: _LoopPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.idle_since = 0.0
        self.keep_alive = False
        self._gone = False

    def reusable(self, now: float) -> bool:
        transport = self.transport
        return (
            not self._gone
            and transport is not None
            and not transport.is_closing()
            and now - self.idle_since < self.pool.pool.idle_s
        )

    async def send(self, request: bytes) -> Response:
        assert self.transport is not None
        response = self.response = Response(self)
        self.keep_alive = False
        self.transport.write(request)
        await response.wait_for_headers()
        return response

    def close(self) -> None:
        if self.transport is not None and not self._gone:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self._gone:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not its subclasses

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response.complete:  # bytes nobody asked for: not a usable peer
            self.abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            response.fail(UpstreamError(f"not a valid HTTP response: {error}"))
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost ends the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        response = self.response
        if response is not None and not response.complete:
            if response.status and response.delimited_by_close():
                response.finish()
            else:
                response.fail(UpstreamError("the connection closed before the answer ended"))
        self.pool.lost(self)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real one follows
            response.raw_headers.clear()
            return
        response.headers_came(status)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None and response.status:
            self.keep_alive = self.parser.should_keep_alive()
            response.finish()

    def released(self, response: Response) -> None:
        """The answer's reader is done with it: the connection goes back to the pool when the
        answer ended and the server keeps it alive, and is closed otherwise."""
        if self.response is not response:
            return
        self.response = None
        if response.complete and self.keep_alive and not self._gone:
            self.pool.release(self)
        else:
            self.abort()


class Response:
    """An upstream answer: `status` and `headers` (names lowercased, a repeated header's values
    joined by ", "), and its body through `read` or `readany`. `release` when done with it
    (`read` and a `readany` that returned the end release it themselves)."""

    __slots__ = (
        "status",
        "raw_headers",
        "complete",
        "_connection",
        "_headers",
        "_chunks",
        "_buffered",
        "_error",
        "_waiter",
        "_paused",
    )

    def __init__(self, connection: _Connection) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self._connection = connection
        self._headers: dict[str, str] | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    @property
    def headers(self) -> dict[str, str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = {}
            for raw_name, raw_value in self.raw_headers:
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    async def read(self) -> bytes:
        """The whole body (waiting for its end); the connection is released."""
        try:
            while not self.complete:
                await self._wait()
            return b"".join(self._chunks)
        finally:
            self.release()

    async def readany(self) -> bytes:
        """The body's bytes that have come since the last call (waiting for some), or `b""` at
        its end (and the connection is released)."""
        while not self._chunks:
            if self.complete:
                self.release()
                return b""
            await self._wait()
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused:
            self._paused = False
            transport = self._connection.transport
            if transport is not None:
                transport.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def release(self) -> None:
        """Done with the answer: its connection back to the pool if the answer was read to its
        end, closed otherwise."""
        self._connection.released(self)

    async def wait_for_headers(self) -> None:
        try:
            while not self.status:
                await self._wait()
        except BaseException:
            self.release()
            raise

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        connection = self._connection
        loop = connection.pool.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(connection.pool.pool.timeout_s, self._timed_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self.fail(TimeoutError("the upstream did not answer in time"))
            self._connection.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # fed by the connection

    def delimited_by_close(self) -> bool:
        """Whether the body ends with the connection (no length, not chunked)."""
        names = {name.lower() for name, _ in self.raw_headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def headers_came(self, status: int) -> None:
        self.status = status
        self._wake()

    def feed(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused:
            transport = self._connection.transport
            if transport is not None:
                self._paused = True
                transport.pause_reading()
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
