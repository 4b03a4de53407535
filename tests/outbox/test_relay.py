from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from service.db import session_scope
from service.logs import request_id_var
from service.outbox import service as outbox
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from service.tasks import TaskName


class Broker:
    """Records what it is given; fails after `fail_after` messages, like a broker going down."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_after = fail_after

    def __call__(self, name: str, kwargs: dict[str, Any], headers: dict[str, str]) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker down")
        self.sent.append((name, kwargs))
        self.headers.append(headers)


def test_work_enqueued_in_a_rolled_back_transaction_is_never_sent(runtime: Runtime) -> None:
    session = runtime.sessions()
    outbox.enqueue(session, TaskName.JOBS_SUBMIT, job_id="ftjob-1")
    session.rollback()
    session.close()
    broker = Broker()

    with session_scope(runtime.sessions) as session:
        outbox.relay(session, broker)

    assert broker.sent == []


def test_the_relay_sends_committed_work_in_order_once(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id="file-1")
        outbox.enqueue(session, TaskName.JOBS_SUBMIT, job_id="ftjob-1")
    broker = Broker()

    for _ in range(2):
        with session_scope(runtime.sessions) as session:
            outbox.relay(session, broker)

    assert broker.sent == [("files.validate", {"file_id": "file-1"}), ("jobs.submit", {"job_id": "ftjob-1"})]


def test_work_survives_a_broker_outage_and_is_sent_when_it_returns(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        for n in range(3):
            outbox.enqueue(session, TaskName.JOBS_REFRESH, job_id=f"ftjob-{n}")
    down = Broker(fail_after=1)
    with session_scope(runtime.sessions) as session:
        outbox.relay(session, down)

    back = Broker()
    with session_scope(runtime.sessions) as session:
        outbox.relay(session, back)
        failures = [row.last_error for row in session.scalars(select(OutboxRow).order_by(OutboxRow.id))]

    assert [kw["job_id"] for _, kw in down.sent + back.sent] == ["ftjob-0", "ftjob-1", "ftjob-2"]
    assert failures[1] == "ConnectionError: broker down"


def test_delayed_work_waits_until_it_is_due(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        row = outbox.enqueue(session, TaskName.JOBS_REFRESH, delay=timedelta(minutes=5), job_id="ftjob-1")
        due = row.available_at
    broker = Broker()

    with session_scope(runtime.sessions) as session:
        outbox.relay(session, broker)
    with session_scope(runtime.sessions) as session:
        outbox.relay(session, broker, now=due)

    assert len(broker.sent) == 1


def test_the_request_id_that_caused_the_work_travels_with_it(runtime: Runtime) -> None:
    token = request_id_var.set("req_caller-42")
    try:
        with session_scope(runtime.sessions) as session:
            outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id="file-1")
    finally:
        request_id_var.reset(token)
    broker = Broker()

    with session_scope(runtime.sessions) as session:
        outbox.relay(session, broker)

    assert broker.headers == [{"ftm_request_id": "req_caller-42"}]
