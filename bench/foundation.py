"""Per-request cost of authentication (cached vs a database lookup every time) and the outbox
relay's throughput, on SQLite in a temporary directory."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.auth import service as auth
from service.auth.keys import ALL_SCOPES
from service.config import Settings
from service.db import session_scope
from service.migrate import upgrade
from service.outbox import service as outbox
from service.runtime import Runtime
from service.tasks import TaskName


def _per_call_us(call: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        samples.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(samples)


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))
        upgrade(settings.database_url)
        runtime = Runtime(settings)
        with session_scope(runtime.sessions) as session:
            _, key = auth.create_key(session, auth.get_or_create_tenant(session, "bench"), scopes=ALL_SCOPES)

        cached = auth.Authenticator(runtime.sessions, ttl_s=60)
        uncached = auth.Authenticator(runtime.sessions, ttl_s=0)
        cached_us = _per_call_us(lambda: cached(key), 2000)
        uncached_us = _per_call_us(lambda: uncached(key), 200)
        print(f"auth, cached key      : {cached_us:8.1f} us/request")
        print(
            f"auth, database lookup : {uncached_us:8.1f} us/request  ({uncached_us / cached_us:.0f}x cached)"
        )

        rows = 2000
        with session_scope(runtime.sessions) as session:
            for n in range(rows):
                outbox.enqueue(session, TaskName.JOBS_REFRESH, job_id=f"ftjob-{n}")
        sent: list[Any] = []
        started = time.perf_counter()
        while True:
            with session_scope(runtime.sessions) as session:
                if not outbox.relay(session, lambda name, kwargs, _headers: sent.append((name, kwargs))):
                    break
        elapsed = time.perf_counter() - started
        print(f"outbox relay          : {rows / elapsed:8.0f} rows/s relayed ({rows} rows, publish = no-op)")
        runtime.close()
