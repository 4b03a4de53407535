"""`PinnedClient` against real servers on 127.0.0.1: it connects to the address it is given for a
host name, keeps the name for the Host header, the TLS server name and the certificate check,
never follows a redirect, reads only the start of an answer, and asks no DNS for a name it has
no pin for."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.outbound.pinned import Answer, OutboundError, OutboundTimeout, PinnedClient, PinnedResolver
from tests.tls import Authority

NAME = "hooks.example.test"


@dataclass
class Server:
    port: int
    hosts: list[str] = field(default_factory=list)  # the Host header of each request
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI of each connection


def _handler(
    server: Server, *, status: int, body: bytes, headers: dict[str, str]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            server.hosts.append(self.headers.get("Host", ""))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Starts servers on 127.0.0.1 (plain, or TLS with the context given); stops them after."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(
        *,
        status: int = 200,
        body: bytes = b"ok",
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> Server:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        state = Server(httpd.server_address[1])
        httpd.RequestHandlerClass = _handler(state, status=status, body=body, headers=headers or {})
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: state.server_names.append(name)
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((httpd, thread))
        return state

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _post(
    url: str,
    *,
    address: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    timeout_s: float = 5.0,
    read_limit: int = 1024,
) -> Answer:
    async def run() -> Answer:
        async with PinnedClient(user_agent="test", tls=tls, timeout_s=timeout_s) as client:
            return await client.post(url, address=address, body=b"{}", headers={}, read_limit=read_limit)

    return asyncio.run(run())


def test_a_request_to_a_name_connects_to_the_pinned_address_and_keeps_the_name_as_host(
    serve: Callable[..., Server],
) -> None:
    server = serve()

    answer = _post(f"http://{NAME}:{server.port}/hooks")  # the name is not in any DNS

    assert answer.status == 200
    assert server.hosts == [f"{NAME}:{server.port}"]


def test_tls_checks_the_certificate_and_sends_the_server_name_of_the_url_not_the_address(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    authority = Authority.make()
    server = serve(tls=authority.server_context(NAME, tmp_path))

    answer = _post(f"https://{NAME}:{server.port}/hooks", tls=authority.client_context())

    assert answer.status == 200
    assert server.server_names == [NAME]
    assert server.hosts == [f"{NAME}:{server.port}"]


def test_tls_to_the_pinned_address_fails_when_its_certificate_is_for_another_name(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    authority = Authority.make()
    server = serve(tls=authority.server_context("other.example.test", tmp_path))

    with pytest.raises(OutboundError, match="certificate"):
        _post(f"https://{NAME}:{server.port}/hooks", tls=authority.client_context())
    assert server.hosts == []


def test_a_redirect_is_answered_not_followed(serve: Callable[..., Server]) -> None:
    target = serve()
    server = serve(status=302, headers={"Location": f"http://127.0.0.1:{target.port}/elsewhere"})

    answer = _post(f"http://{NAME}:{server.port}/hooks")

    assert answer.status == 302
    assert target.hosts == []


def test_only_the_start_of_a_long_answer_is_read(serve: Callable[..., Server]) -> None:
    server = serve(body=b"x" * 100_000)

    answer = _post(f"http://{NAME}:{server.port}/hooks", read_limit=1024)

    assert answer.body == b"x" * 1024


def test_no_answer_within_the_timeout_is_a_timeout() -> None:
    silent = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # accepts, never answers
    try:
        with pytest.raises(OutboundTimeout):
            _post(f"http://{NAME}:{silent.server_address[1]}/hooks", timeout_s=0.3)
    finally:
        silent.server_close()


def test_the_resolver_refuses_a_host_it_has_no_pin_for_and_answers_the_pin_otherwise() -> None:
    resolver = PinnedResolver()
    resolver.pin(NAME, 443, "2001:db8::7")

    with pytest.raises(OSError, match="no checked address"):
        asyncio.run(resolver.resolve("example.com", 443))
    [answer] = asyncio.run(resolver.resolve(NAME.upper(), 443))
    assert ipaddress.ip_address(answer["host"]) == ipaddress.ip_address("2001:db8::7")
    assert answer["hostname"] == NAME.upper()
