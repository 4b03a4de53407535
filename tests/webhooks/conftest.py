"""Fixtures: a real HTTP receiver on 127.0.0.1, the SDK against the app, and builders."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.auth import service as auth
from service.clock import utcnow
from service.ids import new_id
from service.webhooks.models import WebhookEndpointRow
from service.webhooks.signing import generate_secret
from service.webhooks.urls import UrlGuard
from tests.conftest import sdk_for

PUBLIC_IP = "93.184.216.34"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers `status` (with `headers`)."""

    url: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver.requests.append(Received(self.path, headers, body))
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 in a thread."""
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    """The official SDK, strict, as tenant `acme`."""
    return sdk_for(client, tenant_key)


@pytest.fixture
def verifier() -> Iterator[openai.OpenAI]:
    """An SDK client used only for `webhooks.unwrap` (no requests)."""
    with openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1") as sdk:
        yield sdk


def stub_resolver(answers: Mapping[str, Sequence[str]]) -> Callable[[str, int], Sequence[str]]:
    """A resolver that knows only `answers`; any other name fails like an unknown host."""

    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise OSError(f"unknown host {host}")
        return answers[host]

    return resolve


def dev_guard(answers: Mapping[str, Sequence[str]] | None = None) -> UrlGuard:
    return UrlGuard.for_env("dev", resolve=stub_resolver(answers or {}))


def prod_guard(answers: Mapping[str, Sequence[str]] | None = None) -> UrlGuard:
    return UrlGuard.for_env("prod", resolve=stub_resolver(answers or {}))


def make_endpoint(
    session: Session,
    *,
    url: str,
    tenant: str = "acme",
    event_types: Sequence[str] = ("fine_tuning.job.succeeded",),
    status: str = "enabled",
) -> WebhookEndpointRow:
    """An endpoint stored as is (no URL check), for delivery tests."""
    now = utcnow()
    row = WebhookEndpointRow(
        id=new_id("we_"),
        tenant_id=auth.get_or_create_tenant(session, tenant).id,
        name="test",
        url=url,
        event_types=list(event_types),
        secret=generate_secret(),
        status=status,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row
