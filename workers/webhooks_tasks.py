"""Tasks of the webhooks feature: the attempts of a batch of deliveries, made concurrently, and
the sweep that queues due retries."""

from __future__ import annotations

import asyncio

from service.clock import utcnow
from service.db import session_scope
from service.tasks import TaskName
from service.webhooks import delivery, transport
from service.webhooks.limits import RedisEndpointLimiter, connect_async
from service.webhooks.urls import guard_for
from workers.celery_app import celery_app
from workers.runtime import get_runtime


@celery_app.task(name=TaskName.WEBHOOKS_DELIVER.value, acks_late=True, ignore_result=True)
def deliver_webhooks(delivery_ids: list[str] | None = None, delivery_id: str | None = None) -> int:
    """Make the next attempt of each delivery given (leased by the sweep or a redelivery;
    finished or not-yet-due ones are left alone; `delivery_id` is the one-delivery form of tasks
    queued before batches), then of every delivery due, claimed a batch at a time, for up to
    half the task time limit. Returns how many attempts were recorded."""
    ids = list(delivery_ids or []) + ([delivery_id] if delivery_id else [])
    return asyncio.run(_deliver(ids))


async def _deliver(delivery_ids: list[str]) -> int:
    runtime = get_runtime()
    settings = runtime.settings
    guard = guard_for(settings)
    concurrency, per_endpoint = settings.webhook_concurrency, settings.webhook_endpoint_concurrency
    redis = connect_async(settings.redis_url)
    limiter = RedisEndpointLimiter(redis)
    try:
        async with transport.pinned_client(concurrency) as client:
            sender = transport.PinnedSender(client)
            attempted = 0
            if delivery_ids:
                given = await delivery.deliver_batch(
                    runtime.sessions,
                    delivery_ids,
                    sender=sender,
                    guard=guard,
                    clock=utcnow,
                    concurrency=concurrency,
                    per_endpoint=per_endpoint,
                    limiter=limiter,
                    retry_scale=settings.webhook_retry_delay_scale,
                )
                attempted = given.attempted
            attempted += await delivery.drain(
                runtime.sessions,
                sender=sender,
                guard=guard,
                clock=utcnow,
                budget_s=settings.celery_task_time_limit_s / 2,
                concurrency=concurrency,
                per_endpoint=per_endpoint,
                limiter=limiter,
                retry_scale=settings.webhook_retry_delay_scale,
            )
    finally:
        await redis.aclose()
    return attempted


@celery_app.task(name=TaskName.WEBHOOKS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_webhooks() -> int:
    """Queue the deliveries whose next attempt is due (beat runs this every 5 s)."""
    with session_scope(get_runtime().sessions) as session:
        return delivery.enqueue_due(session, now=utcnow())
