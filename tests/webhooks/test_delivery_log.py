"""The delivery log and redelivery: attempts driven against `httpx.MockTransport` receivers at
chosen moments (the injected clock), then read and repaired through the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.clock import to_unix, utcnow
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks import delivery as webhooks
from service.webhooks.models import WebhookDeliveryRow
from service.webhooks.service import emit_event
from tests.conftest import bearer
from tests.webhooks.conftest import dev_guard

URL = "http://127.0.0.1:9/hooks"
SUCCEEDED: Final = "fine_tuning.job.succeeded"
FAILED: Final = "fine_tuning.job.failed"


class FlakyReceiver:
    """Answers 503 ("down for maintenance") `failures` times, then 200; records every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            return httpx.Response(503, text="down for maintenance")
        return httpx.Response(200, text="ok")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


def create_endpoint(sdk: openai.OpenAI) -> tuple[str, str, str]:
    """(endpoint id, tenant id, signing secret) of a new endpoint."""
    created = sdk.webhooks.create(name="log", url=URL, event_types=[SUCCEEDED, FAILED])
    me: dict[str, Any] = sdk.get("/me", cast_to=httpx.Response).json()
    return created.id, me["tenant_id"], created.signing_secret


def emit(runtime: Runtime, tenant_id: str, type: str = SUCCEEDED, data_id: str = "ftjob-1") -> str:
    with session_scope(runtime.sessions) as session:
        return emit_event(session, tenant_id=tenant_id, type=type, data_id=data_id).id


def run_due(runtime: Runtime, receiver: FlakyReceiver, *, now: datetime) -> int:
    """Make every attempt due at `now` (as the sweep and the workers would); how many were made."""
    made = 0
    with session_scope(runtime.sessions) as session:
        due = session.scalars(
            select(WebhookDeliveryRow.id).where(
                WebhookDeliveryRow.status == "pending",
                WebhookDeliveryRow.next_attempt_at <= now + timedelta(minutes=2),
            )
        ).all()
    for delivery_id in due:
        with receiver.client() as http, session_scope(runtime.sessions) as session:
            if webhooks.deliver(session, delivery_id, http=http, guard=dev_guard(), now=now) is not None:
                made += 1
    return made


def next_due(runtime: Runtime) -> datetime | None:
    with session_scope(runtime.sessions) as session:
        return session.scalar(
            select(WebhookDeliveryRow.next_attempt_at)
            .where(WebhookDeliveryRow.status == "pending")
            .order_by(WebhookDeliveryRow.next_attempt_at)
        )


def drive(runtime: Runtime, receiver: FlakyReceiver, *, start: datetime, until: datetime) -> datetime:
    """Attempt every delivery each time one falls due, from `start` until nothing is due before
    `until`; returns the clock's last reading."""
    now = start
    while now < until:
        run_due(runtime, receiver, now=now)
        due = next_due(runtime)
        if due is None or due >= until:
            break
        now = max(due, now + timedelta(seconds=1))
    return now


def log(client: TestClient, key: str, endpoint_id: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=bearer(key), params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_receiver_failing_three_times_gets_the_event_with_one_webhook_id_and_the_log_shows_each_try(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime, verifier: openai.OpenAI
) -> None:
    endpoint_id, tenant_id, secret = create_endpoint(sdk)
    event_id = emit(runtime, tenant_id)
    receiver = FlakyReceiver(failures=3)

    start = utcnow()
    drive(runtime, receiver, start=start, until=start + timedelta(days=1))

    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}
    for request in receiver.requests:  # signed for its own moment (up to 40 min on the test clock)
        verifier.webhooks.verify_signature(
            request.content, dict(request.headers), secret=secret, tolerance=3600
        )
        assert json.loads(request.content)["id"] == event_id
    [delivery] = log(client, tenant_key, endpoint_id)["data"]
    assert delivery["status"] == "succeeded"
    assert delivery["event_id"] == event_id
    assert delivery["event_type"] == SUCCEEDED
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503, 200]
    assert [a["response_body"] for a in delivery["attempts"]] == ["down for maintenance"] * 3 + ["ok"]
    assert delivery["next_attempt_at"] is None


def test_a_failing_delivery_shows_its_next_attempt(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    endpoint_id, tenant_id, _ = create_endpoint(sdk)
    emit(runtime, tenant_id)
    now = utcnow()

    run_due(runtime, FlakyReceiver(failures=5), now=now)

    [delivery] = log(client, tenant_key, endpoint_id)["data"]
    assert delivery["status"] == "failing"
    assert delivery["attempts"][0]["error"] is None
    assert delivery["attempts"][0]["status_code"] == 503
    assert (
        to_unix(now + timedelta(seconds=3))
        <= delivery["next_attempt_at"]
        <= to_unix(now + timedelta(seconds=7))
    )
    assert log(client, tenant_key, endpoint_id, status="failing")["data"] == [delivery]
    assert log(client, tenant_key, endpoint_id, status="pending")["data"] == []


def test_the_log_filters_by_status_event_type_and_time_and_pages(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    endpoint_id, tenant_id, _ = create_endpoint(sdk)
    ids = [emit(runtime, tenant_id, SUCCEEDED if i % 2 else FAILED, f"ftjob-{i}") for i in range(5)]

    first = log(client, tenant_key, endpoint_id, limit=2)
    second = log(client, tenant_key, endpoint_id, limit=2, after=first["last_id"])
    third = log(client, tenant_key, endpoint_id, limit=2, after=second["last_id"])
    failed_type = log(client, tenant_key, endpoint_id, event_type=FAILED)
    later = log(client, tenant_key, endpoint_id, created_after=int(utcnow().timestamp()) + 60)

    paged = [d["event_id"] for page in (first, second, third) for d in page["data"]]
    assert sorted(paged) == sorted(ids)
    assert len(set(paged)) == 5
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)
    assert sorted(d["event_id"] for d in failed_type["data"]) == sorted(ids[0::2])
    assert later["data"] == []
    assert {d["status"] for d in first["data"]} == {"pending"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"status": "lost"}, "status"),
        ({"event_type": "job.done"}, "event_type"),
        ({"after": "whdel_x"}, "after"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, params: dict[str, str], param: str
) -> None:
    endpoint_id, _, _ = create_endpoint(sdk)

    answer = client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=bearer(tenant_key), params=params
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_a_receiver_down_for_the_whole_window_ends_disabled_and_every_event_is_redelivered_once(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    endpoint_id, tenant_id, _ = create_endpoint(sdk)
    down = FlakyReceiver(failures=10**6)
    start = utcnow()
    events = []
    for day in range(6):  # one event a day, each retried on schedule, the receiver never answers 2xx
        events.append(emit(runtime, tenant_id, data_id=f"ftjob-{day}"))
        with session_scope(runtime.sessions) as session:  # recorded on that day
            session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.event_id == events[-1])
                .values(created_at=start + timedelta(days=day), next_attempt_at=start + timedelta(days=day))
            )
        drive(runtime, down, start=start + timedelta(days=day), until=start + timedelta(days=day + 1))

    endpoint = client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=bearer(tenant_key)).json()
    kept = log(client, tenant_key, endpoint_id, limit=100)["data"]
    assert endpoint["status"] == "disabled"
    assert "5 days" in endpoint["disabled_reason"]
    assert sorted(d["event_id"] for d in kept) == sorted(events)
    assert {d["status"] for d in kept} == {"failed"}

    refused = client.post(
        f"/v1/webhook_endpoints/{endpoint_id}/redeliver", headers=bearer(tenant_key), json={"failed_since": 0}
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "webhook_endpoint_disabled"

    enabled = client.post(
        f"/v1/webhook_endpoints/{endpoint_id}", headers=bearer(tenant_key), json={"status": "enabled"}
    )
    assert enabled.json()["status"] == "enabled"
    redelivered = client.post(
        f"/v1/webhook_endpoints/{endpoint_id}/redeliver",
        headers=bearer(tenant_key),
        json={"failed_since": to_unix(start)},
    ).json()
    repaired = FlakyReceiver(failures=0)
    later = start + timedelta(days=7)
    drive(runtime, repaired, start=later, until=later + timedelta(days=1))

    assert redelivered["redelivered"] == 6
    assert sorted(r.headers["webhook-id"] for r in repaired.requests) == sorted(events)
    assert {d["status"] for d in log(client, tenant_key, endpoint_id, limit=100)["data"]} == {"succeeded"}


def test_one_delivery_is_redelivered_with_the_same_webhook_id_and_a_pending_one_is_refused(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    endpoint_id, tenant_id, _ = create_endpoint(sdk)
    event_id = emit(runtime, tenant_id)
    [pending] = log(client, tenant_key, endpoint_id)["data"]
    path = f"/v1/webhook_endpoints/{endpoint_id}/deliveries/{pending['id']}"

    refused = client.post(f"{path}/redeliver", headers=bearer(tenant_key))
    receiver = FlakyReceiver(failures=0)
    run_due(runtime, receiver, now=utcnow())
    again = client.post(f"{path}/redeliver", headers=bearer(tenant_key))
    run_due(runtime, receiver, now=utcnow())
    run_due(runtime, receiver, now=utcnow())  # a second pass sends nothing more

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "webhook_delivery_pending"
    assert again.status_code == 200
    assert again.json()["status"] == "pending"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id, event_id]
    shown = client.get(path, headers=bearer(tenant_key)).json()
    assert shown["status"] == "succeeded"
    assert len(shown["attempts"]) == 2


def test_an_unknown_delivery_is_a_404_naming_it(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str
) -> None:
    endpoint_id, _, _ = create_endpoint(sdk)

    answer = client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries/whdel_nope", headers=bearer(tenant_key)
    )

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "webhook_delivery_not_found"


def test_retries_across_a_rotation_verify_with_the_old_secret_and_the_new_one(
    sdk: openai.OpenAI, runtime: Runtime, verifier: openai.OpenAI
) -> None:
    endpoint_id, tenant_id, old_secret = create_endpoint(sdk)
    event_id = emit(runtime, tenant_id)
    receiver = FlakyReceiver(failures=1)

    run_due(runtime, receiver, now=utcnow())  # fails; the retry is due in about 5 s
    new_secret = sdk.webhooks.rotate_secret(
        endpoint_id, keep_old_secret_active_for_24_hours=True
    ).signing_secret
    with receiver.client() as http, session_scope(runtime.sessions) as session:
        delivery_id = session.scalars(select(WebhookDeliveryRow.id)).one()
        webhooks.deliver(session, delivery_id, http=http, guard=dev_guard(), now=utcnow())

    first, retry = receiver.requests
    assert verifier.webhooks.unwrap(first.content, dict(first.headers), secret=old_secret).id == event_id
    for secret in (old_secret, new_secret):  # during the overlap either secret verifies the retry
        assert verifier.webhooks.unwrap(retry.content, dict(retry.headers), secret=secret).id == event_id
    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.unwrap(first.content, dict(first.headers), secret=new_secret)


def test_an_endpoint_disabled_by_410_fails_its_other_pending_deliveries_at_once(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, runtime: Runtime
) -> None:
    endpoint_id, tenant_id, _ = create_endpoint(sdk)
    first = emit(runtime, tenant_id, data_id="ftjob-1")
    waiting = emit(runtime, tenant_id, data_id="ftjob-2")
    now = utcnow()
    with session_scope(runtime.sessions) as session:  # the second is not due for an hour
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.event_id == waiting)
            .values(next_attempt_at=now + timedelta(hours=1))
        )
    gone = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(410)))
    with session_scope(runtime.sessions) as session:
        [delivery_id] = session.scalars(
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.event_id == first)
        ).all()
        assert webhooks.deliver(session, delivery_id, http=gone, guard=dev_guard(), now=now) is not None

    kept = {d["event_id"]: d for d in log(client, tenant_key, endpoint_id)["data"]}
    assert {event: d["status"] for event, d in kept.items()} == {first: "failed", waiting: "failed"}
    assert kept[waiting]["attempts"] == []
    assert kept[waiting]["next_attempt_at"] is None
