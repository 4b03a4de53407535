"""Redis clients of the service (locks, readiness), all configured alike.

A command that meets a dropped connection is retried twice with a short backoff: a Redis restart
or failover, or a server that closes the connection after an error reply (fakeredis does after
NOSCRIPT, which every Lua-backed lock meets once), then costs a retry instead of a failure.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def connect(url: str, *, connect_timeout_s: float = 2, timeout_s: float = 5) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=connect_timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
