"""A beat scheduler that only schedules while it holds a lock in Redis, so that two beats never
double the periodic work (every periodic task is idempotent as well)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import redis
from celery.beat import PersistentScheduler
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from service.config import get_settings
from service.redis_client import connect

log = logging.getLogger(__name__)
BEAT_LOCK = "ftm:lock:beat"


class LeaderLock:
    """A Redis lock held by one process at a time and renewed by its holder; a holder that dies
    loses it after `ttl_s`. Redis errors count as not holding it."""

    def __init__(self, client: redis.Redis, name: str, ttl_s: float, holder: str) -> None:
        self._lock: Lock = client.lock(name, timeout=ttl_s, blocking=False, thread_local=False)
        self._holder = holder

    def hold(self) -> bool:
        try:
            if self._lock.owned():
                self._lock.reacquire()
                return True
            if self._lock.acquire(token=self._holder):
                log.info("lock %s acquired by %s", self._lock.name, self._holder)
                return True
        except (LockError, RedisError) as error:
            log.warning("lock %s not held: %s", self._lock.name, type(error).__name__)
        return False

    def release(self) -> None:
        try:
            if self._lock.owned():
                self._lock.release()
        except (LockError, RedisError) as error:
            log.warning("lock %s expired before release: %s", self._lock.name, type(error).__name__)


class LockedScheduler(PersistentScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = get_settings()
        self._ttl = settings.beat_lock_ttl_s
        client = connect(settings.redis_url)
        self._leader = LeaderLock(client, BEAT_LOCK, self._ttl, f"{socket.gethostname()}:{os.getpid()}")
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        renew_every = self._ttl / 3
        if not self._leader.hold():
            return renew_every
        return min(float(super().tick(*args, **kwargs)), renew_every)

    def close(self) -> None:
        self._leader.release()
        super().close()
