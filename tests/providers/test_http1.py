"""The proxy's upstream client (`service.providers.http1`) against a scripted HTTP server on
loopback: what it sends, what it hands back, when it reuses, waits for and closes connections,
and how each way an answer can fail reaches the caller. Every test runs on asyncio's loop and on
uvloop's (the one uvicorn serves with)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from service.providers import http1
from tests.tls import Authority

Run = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    runner = asyncio.run if request.param == "asyncio" else uvloop.run
    return lambda main: runner(main())


@dataclass
class Request:
    head: bytes
    body: bytes

    def header(self, name: str) -> list[str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return [
            line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(name.lower() + ":")
        ]


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection


@dataclass
class Server:
    """Answers each request with `answer`; counts connections, keeps the requests and the
    connections' ends."""

    answer: Answer
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client.set()
                    return
                request = Request(head, b"")
                length = request.header("content-length")
                request.body = await reader.readexactly(int(length[0])) if length else b""
                self.requests.append(request)
                if not await self.answer(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client.set()
        finally:
            writer.close()


def json_answer(body: bytes = b'{"ok": true}', *, extra: bytes = b"") -> Answer:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\n"
            + extra
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()
        return b"close" not in extra.lower()

    return answer


def scripted(*steps: bytes | float, keep: bool = False) -> Answer:
    """An answer that writes each bytes step (and drains it) and sleeps each number of seconds,
    then keeps the connection or closes it."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
        for step in steps:
            if isinstance(step, bytes):
                writer.write(step)
                await writer.drain()
            else:
                await asyncio.sleep(step)
        return keep

    return answer


async def serving(answer: Answer, tls: ssl.SSLContext | None = None) -> tuple[Server, asyncio.Server]:
    server = Server(answer)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    return server, listening


def pool_for(server: Server, **options: Any) -> http1.Pool:
    settings: dict[str, Any] = {"timeout_s": 5.0, "max_connections": 8, **options}
    return http1.Pool(
        f"http://127.0.0.1:{server.port}/v1",
        headers={"Authorization": "Bearer sk-operator", "Content-Type": "application/json"},
        **settings,
    )


def test_a_json_answer_comes_back_whole_and_its_connection_serves_the_next_request(run: Run) -> None:
    async def main() -> tuple[Server, list[tuple[int, str | None, bytes]]]:
        server, listening = await serving(json_answer())
        pool = pool_for(server)
        answers = []
        for _ in range(3):
            response = await pool.post("/chat/completions", b'{"model": "m"}')
            answers.append((response.status, response.headers.get("x-request-id"), await response.read()))
        await pool.aclose()
        listening.close()
        return server, answers

    server, answers = run(main)

    assert answers == [(200, "req_1", b'{"ok": true}')] * 3
    assert server.connections == 1
    sent = server.requests[0]
    assert sent.head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert sent.header("host") == [f"127.0.0.1:{server.port}"]
    assert sent.header("authorization") == ["Bearer sk-operator"]
    assert sent.header("content-length") == ["14"]
    assert sent.body == b'{"model": "m"}'


def test_a_stream_hands_over_each_chunk_before_the_server_sends_the_next(run: Run) -> None:
    async def main() -> tuple[list[bytes], int]:
        proceed = asyncio.Event()

        async def answer(request: Request, writer: asyncio.StreamWriter) -> bool:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for n in range(3):
                data = f"data: {n}\n\n".encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                await proceed.wait()
                proceed.clear()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True

        server, listening = await serving(answer)
        pool = pool_for(server)
        response = await pool.post("/chat/completions", b"{}")
        chunks = []
        while chunk := await response.readany():
            chunks.append(chunk)
            proceed.set()  # the server sends the next only now
        again = await pool.post("/chat/completions", b"{}")  # the connection went back to the pool
        while await again.readany():
            proceed.set()
        await pool.aclose()
        listening.close()
        return chunks, server.connections

    chunks, connections = run(main)

    assert chunks == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
    assert connections == 1


def test_https_checks_the_upstreams_certificate_for_its_name(run: Run, tmp_path: Path) -> None:
    authority = Authority.make()

    async def main(name: str) -> tuple[int, bytes]:
        server, listening = await serving(json_answer(), authority.server_context(name, tmp_path))
        pool = http1.Pool(
            f"https://localhost:{server.port}/v1",
            headers={},
            timeout_s=5,
            max_connections=1,
            ssl_context=authority.client_context(),
        )
        try:
            response = await pool.post("/x", b"{}")
            return response.status, await response.read()
        finally:
            await pool.aclose()
            listening.close()

    assert run(lambda: main("localhost")) == (200, b'{"ok": true}')
    with pytest.raises(http1.UpstreamError, match="certificate"):
        run(lambda: main("other.example.test"))


def test_request_headers_replace_the_pools_of_the_same_name_whatever_their_case(run: Run) -> None:
    async def main() -> Server:
        server, listening = await serving(json_answer())
        pool = pool_for(server)
        response = await pool.post("/x", b"{}", {"authorization": "Bearer sk-tenant", "OpenAI-Project": "p1"})
        await response.read()
        await pool.aclose()
        listening.close()
        return server

    sent = run(main).requests[0]

    assert sent.header("authorization") == ["Bearer sk-tenant"]
    assert sent.header("openai-project") == ["p1"]
    assert sent.header("content-type") == ["application/json"]


def test_a_header_that_would_break_the_requests_framing_is_refused_before_anything_is_sent(run: Run) -> None:
    async def main() -> tuple[str, int]:
        server, listening = await serving(json_answer())
        pool = pool_for(server)
        with pytest.raises(http1.UpstreamError) as raised:
            await pool.post("/x", b"{}", {"Authorization": "Bearer sk\r\nX-Injected: 1"})
        await pool.aclose()
        listening.close()
        return str(raised.value), server.connections

    message, connections = run(main)

    assert "'Authorization'" in message
    assert connections == 0
    with pytest.raises(http1.UpstreamError):
        http1.Pool("http://h/v1", headers={"Bad\nName": "x"}, timeout_s=1, max_connections=1)


def test_an_upstream_that_refuses_connections_is_an_upstream_error(run: Run) -> None:
    async def main() -> None:
        listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        listening.close()
        await listening.wait_closed()
        pool = http1.Pool(f"http://127.0.0.1:{port}", headers={}, timeout_s=2, max_connections=1)
        with pytest.raises(http1.UpstreamError, match="could not connect"):
            await pool.post("/x", b"{}")
        # the failed attempt does not hold the only connection slot
        with pytest.raises(http1.UpstreamError, match="could not connect"):
            await pool.post("/x", b"{}")

    run(main)


def test_an_upstream_that_does_not_answer_in_time_times_out_and_its_connection_is_closed(run: Run) -> None:
    async def main() -> bool:
        server, listening = await serving(scripted(10.0))
        pool = pool_for(server, timeout_s=0.2)
        with pytest.raises(TimeoutError):
            await pool.post("/x", b"{}")
        listening.close()
        return server.requests != []

    assert run(main)


def test_a_stream_that_stops_sending_times_out_between_reads(run: Run) -> None:
    async def main() -> bytes:
        stalls = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 10.0)
        server, listening = await serving(stalls)
        pool = pool_for(server, timeout_s=0.2)
        response = await pool.post("/x", b"{}")
        first = await response.readany()
        with pytest.raises(TimeoutError):
            await response.readany()
        listening.close()
        return first

    assert run(main) == b"hello"


def test_an_answer_cut_off_midway_is_an_upstream_error_after_the_bytes_that_came(run: Run) -> None:
    async def main() -> tuple[bytes, bool]:
        # closes after 10 of the 100 bytes
        server, listening = await serving(
            scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        )
        pool = pool_for(server)
        response = await pool.post("/x", b"{}")
        partial = await response.readany()
        with pytest.raises(http1.UpstreamError, match="closed before the answer ended"):
            await response.readany()
        whole = await pool.post("/x", b"{}")
        with pytest.raises(http1.UpstreamError):
            await whole.read()
        listening.close()
        return partial, server.connections == 2

    partial, reconnected = run(main)

    assert partial == b"0123456789"
    assert reconnected


def test_a_body_delimited_by_the_end_of_the_connection_is_read_to_that_end(run: Run) -> None:
    async def main() -> tuple[bytes, bytes, int]:
        until_close = scripted(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall of it"
        )
        server, listening = await serving(until_close)
        pool = pool_for(server)
        first = await (await pool.post("/x", b"{}")).read()
        second = await (await pool.post("/x", b"{}")).read()
        listening.close()
        return first, second, server.connections

    first, second, connections = run(main)

    assert first == second == b"all of it"
    assert connections == 2  # the server closed the first: never reused


def test_a_response_that_is_not_http_is_an_upstream_error(run: Run) -> None:
    async def main() -> None:
        server, listening = await serving(scripted(b"SMTP ready\r\n\r\n", 1.0))
        pool = pool_for(server)
        with pytest.raises(http1.UpstreamError, match="not a valid HTTP response"):
            await pool.post("/x", b"{}")
        listening.close()

    run(main)


def test_an_interim_100_answer_is_skipped_for_the_real_one(run: Run) -> None:
    async def main() -> tuple[int, bytes]:
        interim = scripted(
            b"HTTP/1.1 100 Continue\r\n\r\n",
            0.05,  # the client has read the interim answer on its own
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            keep=True,
        )
        server, listening = await serving(interim)
        pool = pool_for(server)
        response = await pool.post("/x", b"{}")
        answer = response.status, await response.read()
        await pool.aclose()
        listening.close()
        return answer

    assert run(main) == (201, b"ok")


def test_a_server_that_says_close_gets_a_new_connection_for_the_next_request(run: Run) -> None:
    async def main() -> int:
        server, listening = await serving(json_answer(extra=b"Connection: close\r\n"))
        pool = pool_for(server)
        for _ in range(2):
            await (await pool.post("/x", b"{}")).read()
        listening.close()
        return server.connections

    assert run(main) == 2


def test_a_connection_idle_too_long_or_closed_by_the_server_is_not_reused(run: Run) -> None:
    async def main() -> tuple[int, int]:
        server, listening = await serving(json_answer())
        pool = pool_for(server, idle_s=0.05)
        await (await pool.post("/x", b"{}")).read()
        await asyncio.sleep(0.1)
        await (await pool.post("/x", b"{}")).read()  # idle past idle_s: a new connection
        after_idle = server.connections

        async def closes_after_answering(request: Request, writer: asyncio.StreamWriter) -> bool:
            await json_answer()(request, writer)
            await asyncio.sleep(0.05)
            return False  # closes the kept-alive connection a moment later

        closing, closing_listener = await serving(closes_after_answering)
        closing_pool = pool_for(closing)
        await (await closing_pool.post("/x", b"{}")).read()
        await asyncio.sleep(0.2)
        response = await closing_pool.post("/x", b"{}")  # not on the closed one
        assert await response.read() == b'{"ok": true}'
        await pool.aclose()
        await closing_pool.aclose()
        listening.close()
        closing_listener.close()
        return after_idle, closing.connections

    after_idle, closing_connections = run(main)

    assert after_idle == 2
    assert closing_connections == 2


def test_past_max_connections_a_request_waits_for_one_then_times_out_if_none_frees(run: Run) -> None:
    async def main() -> tuple[bytes, int]:
        server, listening = await serving(json_answer())
        pool = pool_for(server, max_connections=1, timeout_s=0.3)
        holding = await pool.post("/x", b"{}")  # not read yet: holds the only connection
        waiting = asyncio.ensure_future(pool.post("/x", b"{}"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await holding.read()  # frees it: the waiter gets it
        body = await (await waiting).read()
        connections = server.connections
        held = await pool.post("/x", b"{}")
        with pytest.raises(TimeoutError):
            await pool.post("/x", b"{}")
        await held.read()
        await pool.aclose()
        listening.close()
        return body, connections

    body, connections = run(main)

    assert body == b'{"ok": true}'
    assert connections == 1


def test_a_stream_nobody_reads_stops_being_read_from_the_socket(run: Run) -> None:
    async def main() -> tuple[int, int]:
        backlog = 0
        total = 8 * 1024 * 1024

        async def floods(request: Request, writer: asyncio.StreamWriter) -> bool:
            nonlocal backlog
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(total).encode() + b"\r\n\r\n")
            writer.write(b"x" * total)
            await asyncio.sleep(0.3)
            backlog = writer.transport.get_write_buffer_size()
            await writer.drain()
            return True

        server, listening = await serving(floods)
        pool = pool_for(server)
        response = await pool.post("/x", b"{}")
        await asyncio.sleep(0.5)  # the reader is slow: the client must not take it all in
        received = 0
        while chunk := await response.readany():
            received += len(chunk)
        await pool.aclose()
        listening.close()
        return backlog, received

    backlog, received = run(main)

    assert backlog > 1024 * 1024  # most of it still waited at the server's side
    assert received == 8 * 1024 * 1024


def test_a_stream_released_before_its_end_closes_its_connection(run: Run) -> None:
    async def main() -> tuple[bool, int]:
        chunks: list[bytes | float] = [b"5\r\nhello\r\n", 0.02] * 50
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        long_stream = scripted(head, *chunks, b"0\r\n\r\n", keep=True)

        server, listening = await serving(long_stream)
        pool = pool_for(server)
        response = await pool.post("/x", b"{}")
        await response.readany()
        response.release()  # the caller went away midway
        await asyncio.wait_for(server.closed_by_client.wait(), 2)
        await (await pool.post("/x", b"{}")).read()
        await pool.aclose()
        listening.close()
        return server.closed_by_client.is_set(), server.connections

    closed, connections = run(main)

    assert closed
    assert connections == 2
