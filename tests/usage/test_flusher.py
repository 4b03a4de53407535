"""The usage flusher: buffered usage is written on a clean shutdown, and a failed write is kept
for the next one instead of being lost."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.auth.models import TenantRow
from service.db import session_scope
from service.runtime import Runtime
from service.usage.flusher import UsageFlusher
from service.usage.models import UsageRow
from service.usage.records import UsageBuffer, UsageRecord
from tests.conftest import sdk_for
from tests.proxy.fakes import FakeUpstream

BASE = "gpt-4o-mini-2024-07-18"


def record(tokens: int = 10) -> UsageRecord:
    return UsageRecord("tenant_x", "key_x", BASE, "local", 200, tokens, 2, 0.01, at=1_796_000_000.0)


def rows(runtime: Runtime) -> list[UsageRow]:
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(UsageRow)))


def test_usage_buffered_when_the_app_shuts_down_is_written(
    app: FastAPI, runtime: Runtime, tenant_key: str, upstream: FakeUpstream
) -> None:
    app.state.usage.flusher._interval_s = 3600  # nothing but the shutdown writes it
    with TestClient(app) as client:
        sdk_for(client, tenant_key).chat.completions.create(
            model=BASE,
            messages=[{"role": "user", "content": "hi"}],
        )
        assert rows(runtime) == []

    [row] = rows(runtime)
    assert (row.requests, row.input_tokens) == (1, upstream.reported_usage[0]["prompt_tokens"])


class FailingOnce:
    """A session factory whose first transaction fails, as a database restart would."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.failed = False

    def __call__(self) -> Session:
        if not self.failed:
            self.failed = True
            raise OperationalError("INSERT", {}, Exception("the database is restarting"))
        return self.sessions()


def test_a_failed_flush_keeps_the_usage_and_the_next_one_writes_it(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        session.add(TenantRow(id="tenant_x", name="x"))
    flusher = UsageFlusher(
        UsageBuffer({}),
        FailingOnce(runtime.sessions),  # type: ignore[arg-type]
        interval_s=3600,
        batch_records=100,
    )
    flusher.record(record(10))

    first = flusher.flush()
    flusher.record(record(5))
    second = flusher.flush()

    assert (first, second) == (False, True)
    [row] = rows(runtime)
    assert (row.requests, row.input_tokens, row.output_tokens) == (2, 15, 4)


def test_a_bucket_the_database_refuses_for_good_is_dropped_without_holding_back_the_others(
    runtime: Runtime,
) -> None:
    with session_scope(runtime.sessions) as session:
        session.add(TenantRow(id="tenant_x", name="x"))
    flusher = UsageFlusher(UsageBuffer({}), runtime.sessions, interval_s=3600, batch_records=100)
    flusher.record(record(10))
    flusher.record(UsageRecord("tenant_deleted", "key_y", BASE, "local", 200, 7, 1, 0.01, at=1_796_000_000.0))

    written = flusher.flush()

    assert written
    assert [(row.tenant_id, row.input_tokens) for row in rows(runtime)] == [("tenant_x", 10)]
    assert len(flusher.buffer) == 0
