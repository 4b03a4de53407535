"""Two sweepers at once (beat started twice, two workers sweeping) never take the same job: each
due job is queued for one refresh or submit, whoever sweeps."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from service.auth import service as auth
from service.clock import utcnow
from service.db import session_scope
from service.ids import new_id
from service.jobs import refresh
from service.jobs.models import JobRow
from service.outbox.models import OutboxRow
from service.runtime import Runtime

JOBS = 150
SWEEPERS = 4


def due_jobs(runtime: Runtime, count: int) -> list[str]:
    past = utcnow() - timedelta(seconds=5)
    with session_scope(runtime.sessions) as session:
        tenant = auth.get_or_create_tenant(session, "acme")
        rows = [
            JobRow(
                id=new_id("ftjob-"),
                tenant_id=tenant.id,
                provider="local",
                provider_job_id=f"ftjob-remote-{index}" if index % 2 else None,
                model="gpt-4o-mini-2024-07-18",
                training_file="file-x",
                hyperparameters={},
                seed=index,
                status="running" if index % 2 else "validating_files",
                result_files=[],
                next_refresh_at=past,
            )
            for index in range(count)
        ]
        session.add_all(rows)
        return [row.id for row in rows]


def test_concurrent_sweeps_queue_each_due_job_once(runtime: Runtime) -> None:
    ids = due_jobs(runtime, JOBS)
    barrier = threading.Barrier(SWEEPERS)
    swept: list[int] = []

    def sweeper() -> None:
        barrier.wait()
        idle = 0
        while idle < 3:
            try:
                with session_scope(runtime.sessions) as session:
                    claimed = refresh.sweep(session, batch_size=20)
            except OperationalError:  # SQLite: another sweeper held the write lock; beat tries again
                claimed = -1
            swept.append(max(claimed, 0))
            idle = idle + 1 if claimed == 0 else 0

    threads = [threading.Thread(target=sweeper) for _ in range(SWEEPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    with session_scope(runtime.sessions) as session:
        queued = Counter(row.kwargs["job_id"] for row in session.scalars(select(OutboxRow)))
        tasks = Counter(row.task_name for row in session.scalars(select(OutboxRow)))
    assert sum(swept) == JOBS
    assert set(queued) == set(ids)
    assert max(queued.values()) == 1
    assert tasks == {"jobs.refresh": JOBS // 2, "jobs.submit": JOBS // 2}


def test_a_sweep_takes_the_jobs_due_before_the_middle_of_its_coming_period(runtime: Runtime) -> None:
    (soon,) = due_jobs(runtime, 1)
    (claimed,) = due_jobs(runtime, 1)
    with session_scope(runtime.sessions) as session:
        session.get_one(JobRow, soon).next_refresh_at = utcnow() + timedelta(seconds=4)
        held = session.get_one(JobRow, claimed)
        held.next_refresh_at = utcnow() + timedelta(seconds=4)
        held.submit_claimed_until = utcnow() + timedelta(seconds=4)

    with session_scope(runtime.sessions) as session:
        without_ahead = refresh.sweep(session)
    with session_scope(runtime.sessions) as session:
        with_ahead = refresh.sweep(session, ahead=timedelta(seconds=5))

    assert (without_ahead, with_ahead) == (0, 1)  # the claimed one waits for its claim to run out
    with session_scope(runtime.sessions) as session:
        assert [row.kwargs["job_id"] for row in session.scalars(select(OutboxRow))] == [soon]


def test_one_tick_sweeps_batch_after_batch_until_every_due_job_is_queued(runtime: Runtime) -> None:
    ids = due_jobs(runtime, 7)

    swept = refresh.sweep_all(runtime.sessions, batch_size=3)
    again = refresh.sweep_all(runtime.sessions, batch_size=3)
    with session_scope(runtime.sessions) as session:  # every lease runs out: all due once more
        session.execute(update(JobRow).values(next_refresh_at=utcnow() - timedelta(seconds=5)))
    bounded = refresh.sweep_all(runtime.sessions, batch_size=3, max_batches=2)

    assert (swept, again, bounded) == (7, 0, 6)  # the seventh waits for the next tick
    with session_scope(runtime.sessions) as session:
        queued = Counter(row.kwargs["job_id"] for row in session.scalars(select(OutboxRow)))
    assert set(queued) == set(ids)
    assert sorted(queued.values()) == [1] + [2] * 6
