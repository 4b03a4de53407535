"""`emit_event` (the contract the jobs feature calls), the sweep, and the Celery task shells."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import openai
import pytest
from openai.types.webhooks import FineTuningJobSucceededWebhookEvent
from sqlalchemy import select

from service.clock import utcnow
from service.db import session_scope
from service.outbox import service as outbox
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from service.tasks import Queue, TaskName, queue_for
from service.webhooks import delivery as webhooks
from service.webhooks.models import WebhookDeliveryRow, WebhookEventRow
from service.webhooks.service import emit_event
from tests.webhooks.conftest import Receiver, make_endpoint

SUCCEEDED: Final = "fine_tuning.job.succeeded"


def _tasks(runtime: Runtime) -> list[dict[str, Any]]:
    """The kwargs of every queued `webhooks.deliver` task, oldest first."""
    with session_scope(runtime.sessions) as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id))
        return [dict(row.kwargs) for row in rows if row.task_name == TaskName.WEBHOOKS_DELIVER]


def _queued(runtime: Runtime) -> list[str]:
    """The deliveries queued by id (leased: by the sweep or a redelivery)."""
    return [delivery_id for kwargs in _tasks(runtime) for delivery_id in kwargs.get("delivery_ids", [])]


def test_an_event_is_delivered_to_each_enabled_endpoint_of_the_tenant_subscribed_to_it(
    runtime: Runtime,
) -> None:
    with session_scope(runtime.sessions) as session:
        wanted = make_endpoint(
            session, url="http://127.0.0.1:9/a", event_types=[SUCCEEDED, "fine_tuning.job.failed"]
        )
        make_endpoint(session, url="http://127.0.0.1:9/b", event_types=["fine_tuning.job.failed"])
        make_endpoint(session, url="http://127.0.0.1:9/c", status="disabled")
        make_endpoint(session, url="http://127.0.0.1:9/d", tenant="globex")

        event = emit_event(session, tenant_id=wanted.tenant_id, type=SUCCEEDED, data_id="ftjob-1")

    with session_scope(runtime.sessions) as session:
        deliveries = list(session.scalars(select(WebhookDeliveryRow)))
    assert event.id.startswith("evt_")
    assert event.data == {"id": "ftjob-1"}
    assert [(d.endpoint_id, d.event_id, d.status) for d in deliveries] == [(wanted.id, event.id, "pending")]
    assert _tasks(runtime) == [{}]  # a worker is woken to deliver whatever is due


def test_an_event_emitted_in_a_rolled_back_transaction_leaves_nothing(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        tenant_id = make_endpoint(session, url="http://127.0.0.1:9/a").tenant_id

    session = runtime.sessions()
    emit_event(session, tenant_id=tenant_id, type=SUCCEEDED, data_id="ftjob-1")
    session.rollback()
    session.close()

    with session_scope(runtime.sessions) as session:
        left = [session.query(table).count() for table in (WebhookEventRow, WebhookDeliveryRow, OutboxRow)]
    assert left == [0, 0, 0]


def test_an_unknown_event_type_is_a_programming_error(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session, pytest.raises(ValueError, match="batch.completed"):
        emit_event(session, tenant_id="tenant_x", type="batch.completed", data_id="batch_1")


def _emit_one(runtime: Runtime) -> str:
    with session_scope(runtime.sessions) as session:
        tenant_id = make_endpoint(session, url="http://127.0.0.1:9/a").tenant_id
        emit_event(session, tenant_id=tenant_id, type=SUCCEEDED, data_id="ftjob-1")
        return session.scalars(select(WebhookDeliveryRow.id)).one()


def test_two_sweeps_queue_a_due_delivery_once(runtime: Runtime) -> None:
    delivery_id = _emit_one(runtime)

    for _ in range(2):
        with session_scope(runtime.sessions) as session:
            webhooks.enqueue_due(session, now=utcnow())

    assert _queued(runtime) == [delivery_id]


def test_a_delivery_claimed_by_a_worker_is_not_queued_by_the_sweep_until_its_lease_ends(
    runtime: Runtime,
) -> None:
    delivery_id = _emit_one(runtime)
    now = utcnow()
    with session_scope(runtime.sessions) as session:
        claimed = webhooks.claim_due(session, now=now)

    with session_scope(runtime.sessions) as session:
        during = webhooks.enqueue_due(session, now=now + timedelta(minutes=1))
    with session_scope(runtime.sessions) as session:
        after = webhooks.enqueue_due(session, now=now + timedelta(minutes=3))

    assert claimed == [delivery_id]
    assert (during, after) == (0, 1)
    assert _queued(runtime) == [delivery_id]


def test_an_emitted_event_reaches_a_real_receiver_through_the_outbox_and_the_task(
    runtime: Runtime, receiver: Receiver, verifier: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import webhooks_tasks

    monkeypatch.setattr(webhooks_tasks, "get_runtime", lambda: runtime)
    with session_scope(runtime.sessions) as session:
        endpoint = make_endpoint(session, url=receiver.url)
        emit_event(session, tenant_id=endpoint.tenant_id, type=SUCCEEDED, data_id="ftjob-42")
    published: list[tuple[str, dict[str, Any]]] = []
    with session_scope(runtime.sessions) as session:
        outbox.relay(session, lambda name, kwargs, _headers: published.append((name, kwargs)))

    for name, kwargs in published:
        assert name == "webhooks.deliver"
        webhooks_tasks.deliver_webhooks(**kwargs)

    [request] = receiver.requests
    event = verifier.webhooks.unwrap(request.body, request.headers, secret=endpoint.secret)
    assert isinstance(event, FineTuningJobSucceededWebhookEvent)
    assert event.data.id == "ftjob-42"
    with session_scope(runtime.sessions) as session:
        assert session.scalars(select(WebhookDeliveryRow.status)).one() == "succeeded"


def test_an_event_for_many_endpoints_wakes_one_worker_task(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        tenant_id = ""
        for index in range(3):
            tenant_id = make_endpoint(session, url=f"http://127.0.0.1:9/{index}").tenant_id
        emit_event(session, tenant_id=tenant_id, type=SUCCEEDED, data_id="ftjob-1")

    with session_scope(runtime.sessions) as session:
        deliveries = list(session.scalars(select(WebhookDeliveryRow.id)))
    assert _tasks(runtime) == [{}]
    assert len(deliveries) == 3


def test_the_tasks_are_registered_ack_late_and_delivery_runs_on_the_webhooks_queue() -> None:
    import workers.webhooks_tasks  # noqa: F401  (registers the tasks)
    from workers.celery_app import celery_app

    tasks = [celery_app.tasks[name.value] for name in (TaskName.WEBHOOKS_DELIVER, TaskName.WEBHOOKS_SWEEP)]

    assert all(task.acks_late for task in tasks)
    assert queue_for(TaskName.WEBHOOKS_DELIVER) is Queue.WEBHOOKS
