"""Relay the outbox to the broker (scheduled by beat every second)."""

from __future__ import annotations

import logging

from redis.exceptions import LockError, RedisError

from service.db import session_scope
from service.outbox import service as outbox
from service.queueing import publisher
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)
RELAY_LOCK = "ftm:lock:outbox-relay"
PRUNED_MARK = "ftm:outbox:pruned"


@celery_app.task(name=TaskName.OUTBOX_RELAY.value, acks_late=True, ignore_result=True)
def relay_outbox() -> int:
    runtime = get_runtime()
    lock = runtime.redis.lock(RELAY_LOCK, timeout=60, blocking=False)
    try:
        if not lock.acquire():
            return 0
    except RedisError:
        log.warning("outbox relay: Redis unavailable; rows stay pending")
        return 0
    try:
        total = 0
        publish = publisher(celery_app)
        while True:
            with session_scope(runtime.sessions) as session:
                sent = outbox.relay(session, publish)
            total += sent
            if sent < outbox.RELAY_BATCH:
                break
        if runtime.redis.set(PRUNED_MARK, 1, nx=True, ex=3600):  # prune once an hour, not every relay
            with session_scope(runtime.sessions) as session:
                outbox.prune(session)
        return total
    finally:
        try:
            lock.release()
        except (LockError, RedisError):
            log.warning("outbox relay: lock already expired")
