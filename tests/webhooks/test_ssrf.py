"""Where webhooks may go: the allow-list, the service's own Redis and database, and the address a
delivery connects to (the one checked: no DNS rebinding), at registration and at delivery, with
the httpx client (the API's test send) and the workers' aiohttp client (`transport.PinnedSender`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks import delivery as webhooks
from service.webhooks import transport
from service.webhooks.models import WebhookAttemptRow, WebhookDeliveryRow
from service.webhooks.service import emit_event
from service.webhooks.urls import UrlGuard, UrlRejected, guard_for
from tests.webhooks.conftest import PUBLIC_IP, Receiver, make_endpoint, stub_resolver

NAMES = {
    "hooks.example.com": [PUBLIC_IP],
    "private.example.com": ["10.0.0.8"],
    "receiver.internal": ["10.20.0.7"],
    "team.corp.example": ["192.168.4.2"],
    "sneaky.corp.example": ["169.254.169.254"],
    "redis.internal": ["10.9.9.9"],
    "localhost": ["127.0.0.1", "::1"],
}


def guard(env: str = "prod", allowed: Sequence[str] | None = None, **kwargs: object) -> UrlGuard:
    return UrlGuard.for_env(env, allowed=allowed, resolve=stub_resolver(NAMES), **kwargs)  # type: ignore[arg-type]


FORBIDDEN = [
    # (url, env) refused at registration with address_denied or noncanonical_ip
    ("https://127.0.0.1/", "address_denied"),
    ("https://[::1]/", "address_denied"),
    ("https://localhost/", "address_denied"),
    ("https://2130706433/", "noncanonical_ip"),
    ("https://0x7f000001/", "noncanonical_ip"),
    ("https://0177.0.0.1/", "noncanonical_ip"),
    ("https://127.1/", "noncanonical_ip"),
    ("https://[::ffff:127.0.0.1]/", "address_denied"),
    ("https://[::ffff:7f00:1]/", "address_denied"),
    ("https://[::ffff:10.0.0.1]/", "address_denied"),
    ("https://[64:ff9b::a9fe:a9fe]/", "address_denied"),
    ("https://10.0.0.1/", "address_denied"),
    ("https://172.16.5.4/", "address_denied"),
    ("https://192.168.0.1/", "address_denied"),
    ("https://[fc00::1]/", "address_denied"),
    ("https://169.254.169.254/latest/meta-data/", "address_denied"),
    ("https://[fd00:ec2::254]/", "address_denied"),
    ("https://100.100.100.200/", "address_denied"),
    ("https://[fe80::1]/", "address_denied"),
    ("https://private.example.com/", "address_denied"),
    ("https://nowhere.example.com/", "unresolvable"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN)
def test_a_forbidden_url_is_refused_at_registration(
    url: str, reason: str, sdk: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.webhooks.urls.resolve_host", stub_resolver(NAMES))
    monkeypatch.setattr("service.webhooks.router.guard_for", lambda settings: guard("prod"))

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.webhooks.create(name="x", url=url, event_types=["fine_tuning.job.succeeded"])

    assert refused.value.body is not None
    assert refused.value.param == "url"
    assert refused.value.code == reason


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN)
def test_the_same_urls_are_refused_in_dev_except_loopback(url: str, reason: str) -> None:
    dev = guard("dev")
    loopback = url.startswith(
        ("https://127.0.0.1", "https://[::1]", "https://localhost", "https://[::ffff:127")
    )
    loopback = loopback or url.startswith("https://[::ffff:7f00:1]")

    if loopback:
        assert dev.check(url).url == url
        return
    with pytest.raises(UrlRejected) as refused:
        dev.check(url)
    assert refused.value.reason == reason


def test_the_allow_list_lets_networks_and_named_hosts_through_but_not_metadata_by_name() -> None:
    allowing = guard(allowed=["10.20.0.0/16", "*.corp.example", "fd00::/8"])

    assert allowing.check("https://receiver.internal/x").addresses[0].exploded == "10.20.0.7"
    assert allowing.check("https://team.corp.example/x").host == "team.corp.example"
    assert allowing.check("https://[fd00::5]/").port == 443
    with pytest.raises(UrlRejected):
        allowing.check("https://sneaky.corp.example/")  # an allowed name pointing to metadata
    with pytest.raises(UrlRejected):
        allowing.check("https://private.example.com/")  # 10.0.0.8 is outside 10.20/16


def test_a_bad_allow_list_entry_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="neither a network"):
        Settings(_env_file=None, webhook_allowed_destinations="10.0.0.0/8,not a host!")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6390/",
        "http://localhost:6390/x",
        "http://redis.internal:6379/",
        "http://10.9.9.9:6379/",
    ],
)
def test_the_services_own_redis_and_database_are_refused_even_when_allowed(url: str) -> None:
    own = guard(
        "dev",
        allowed=["127.0.0.0/8", "10.0.0.0/8"],
        own_services=[("127.0.0.1", 6390), ("redis.internal", 6379)],
    )

    with pytest.raises(UrlRejected) as refused:
        own.check(url)
    assert "own Redis or database" in refused.value.message


def test_guard_for_takes_the_settings_redis_and_database_hosts(tmp_path: object) -> None:
    settings = Settings(
        _env_file=None,
        redis_url="redis://127.0.0.1:6390/0",
        database_url="postgresql+psycopg://root@127.0.0.1:5432/ftm",
    )
    dev = guard_for(settings, resolve=stub_resolver(NAMES))

    for url in ("http://127.0.0.1:6390/", "http://127.0.0.1:5432/"):
        with pytest.raises(UrlRejected):
            dev.check(url)
    assert dev.check("http://127.0.0.1:8080/hooks").port == 8080


class Rebinding:
    """A resolver whose first answer is `first` (public) and every later one `later` (loopback)."""

    def __init__(self, first: str = PUBLIC_IP, later: str = "127.0.0.1") -> None:
        self.calls = 0
        self.first, self.later = first, later

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls += 1
        return [self.first] if self.calls == 1 else [self.later]


def test_a_delivery_connects_to_the_address_it_checked_keeping_the_host_header(runtime: Runtime) -> None:
    resolver = Rebinding()
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url="https://rebind.example.com/hooks")
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-1")
        delivery_id = session.query(WebhookDeliveryRow).one().id
    with (
        httpx.Client(transport=httpx.MockTransport(handle)) as http,
        session_scope(runtime.sessions) as session,
    ):
        webhooks.deliver(
            session, delivery_id, http=http, guard=UrlGuard.for_env("prod", resolve=resolver), now=utcnow()
        )

    [request] = seen
    assert request.url.host == PUBLIC_IP
    assert request.headers["host"] == "rebind.example.com"
    assert request.extensions["sni_hostname"] == "rebind.example.com"
    assert resolver.calls == 1  # resolved once; the second (rebinding) answer is never asked for


def test_a_name_that_rebinds_to_loopback_by_delivery_time_is_blocked_then(runtime: Runtime) -> None:
    resolver = Rebinding()
    prod = UrlGuard.for_env("prod", resolve=resolver)
    prod.check("https://rebind.example.com/hooks")  # registration saw the public address
    seen: list[httpx.Request] = []

    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url="https://rebind.example.com/hooks")
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-1")
        delivery_id = session.query(WebhookDeliveryRow).one().id

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with (
        httpx.Client(transport=httpx.MockTransport(handle)) as http,
        session_scope(runtime.sessions) as session,
    ):
        webhooks.deliver(session, delivery_id, http=http, guard=prod, now=utcnow())
        attempt = session.query(WebhookAttemptRow).one()

    assert seen == []
    assert attempt.error == "blocked_destination"


def _deliver_with_workers_client(runtime: Runtime, delivery_ids: list[str], guard: UrlGuard) -> None:
    async def run() -> None:
        async with transport.pinned_client(4) as client:
            await webhooks.deliver_batch(
                runtime.sessions,
                delivery_ids,
                sender=transport.PinnedSender(client),
                guard=guard,
                clock=utcnow,
            )

    asyncio.run(run())


def test_the_workers_client_connects_to_the_address_it_checked_keeping_the_name_as_host(
    runtime: Runtime, receiver: Receiver
) -> None:
    # A name whose first answer is the receiver's address and every later one another address:
    # the request reaches the receiver only if the client connects to the checked address.
    port = urlsplit(receiver.url).port
    resolver = Rebinding(first="127.0.0.1", later="10.0.0.8")
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=f"http://rebind.example.com:{port}/hooks")
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-1")
        delivery_id = session.query(WebhookDeliveryRow).one().id

    _deliver_with_workers_client(runtime, [delivery_id], UrlGuard.for_env("dev", resolve=resolver))

    [request] = receiver.requests
    assert request.headers["host"] == f"rebind.example.com:{port}"
    assert resolver.calls == 1
    with session_scope(runtime.sessions) as session:
        assert session.get(WebhookDeliveryRow, delivery_id).status == "succeeded"  # type: ignore[union-attr]


def test_the_workers_client_sends_nothing_to_a_name_that_rebinds_to_loopback_by_delivery_time(
    runtime: Runtime, receiver: Receiver
) -> None:
    port = urlsplit(receiver.url).port
    resolver = Rebinding(first=PUBLIC_IP, later="127.0.0.1")
    prod = UrlGuard(schemes=frozenset({"http"}), resolve=resolver)  # prod's rules, over plain http
    prod.check(f"http://rebind.example.com:{port}/hooks")  # registration saw the public address
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=f"http://rebind.example.com:{port}/hooks")
        emit_event(session, tenant_id=endpoint.tenant_id, type="fine_tuning.job.succeeded", data_id="ftjob-1")
        delivery_id = session.query(WebhookDeliveryRow).one().id

    _deliver_with_workers_client(runtime, [delivery_id], prod)

    assert receiver.requests == []
    with session_scope(runtime.sessions) as session:
        assert session.query(WebhookAttemptRow).one().error == "blocked_destination"
