"""A small HTTP/1.1 load generator for `bench/proxy.py`: `concurrency` keep-alive connections, each
sending the same POST again as soon as the previous answer is complete, for a fixed time.

Raw asyncio and httptools (run it on uvloop), so that the load costs little CPU beside the
servers measured. A sample is the time from writing a request to the end of its answer, or with
`first_byte` to the first byte of its body (a stream's first chunk); the rest is still read.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.first_byte: asyncio.Future[float] | None = None
        self.done: asyncio.Future[int] | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        for future in (self.first_byte, self.done):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def send(self, request: bytes) -> tuple[asyncio.Future[float], asyncio.Future[int]]:
        """Write `request`; (when its body's first byte came, its status once it is complete)."""
        loop = asyncio.get_running_loop()
        self.first_byte, self.done = loop.create_future(), loop.create_future()
        assert self._transport is not None
        self._transport.write(request)
        return self.first_byte, self.done

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        if self.first_byte is not None and not self.first_byte.done():
            self.first_byte.set_result(time.perf_counter())

    def on_message_complete(self) -> None:
        if self.first_byte is not None and not self.first_byte.done():
            self.first_byte.set_result(time.perf_counter())
        if self.done is not None and not self.done.done():
            self.done.set_result(self._parser.get_status_code())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def build_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(
    url: str, body: bytes, headers: dict[str, str], *, concurrency: int, duration_s: float, first_byte: bool
) -> Result:
    """Load `url` for `duration_s` seconds; every connection's samples together."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = build_request(url, body, {"Content-Type": "application/json", **headers})
    result = Result()
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker() -> None:
        _, connection = await loop.create_connection(_Connection, host, port)
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                first_byte_at, done = connection.send(request)
                try:
                    first = await first_byte_at
                    status = await done
                except ConnectionError:
                    result.errors += 1
                    return
                if status != 200:
                    result.errors += 1
                    continue
                result.latencies_s.append((first if first_byte else time.perf_counter()) - sent)
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result
