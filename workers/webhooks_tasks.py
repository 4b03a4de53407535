"""Tasks of the webhooks feature: one delivery attempt, and the sweep that queues due retries."""

from __future__ import annotations

from service.clock import utcnow
from service.db import session_scope
from service.tasks import TaskName
from service.webhooks import delivery
from service.webhooks.urls import UrlGuard
from workers.celery_app import celery_app
from workers.runtime import get_runtime


@celery_app.task(name=TaskName.WEBHOOKS_DELIVER.value, acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> None:
    """Make the delivery's next attempt; a finished or not-yet-due delivery is left alone."""
    runtime = get_runtime()
    guard = UrlGuard.for_env(runtime.settings.env)
    with delivery.http_client() as http, session_scope(runtime.sessions) as session:
        delivery.deliver(session, delivery_id, http=http, guard=guard, now=utcnow())


@celery_app.task(name=TaskName.WEBHOOKS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_webhooks() -> int:
    """Queue the deliveries whose next attempt is due (beat runs this every 5 s)."""
    with session_scope(get_runtime().sessions) as session:
        return delivery.enqueue_due(session, now=utcnow())
