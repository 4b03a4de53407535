"""Refreshes import the provider's events into the job's log: each once, in the provider's order,
after our own lines, whatever the number of refreshes it takes."""

from __future__ import annotations

import openai
from sqlalchemy import select

from service.db import session_scope
from service.jobs.models import JobEventRow, JobRow
from service.jobs.snapshots import Known, apply_snapshot, fetch_snapshot
from service.runtime import Runtime
from tests.jobs.conftest import access, follow, submit, upload

BASE = "gpt-4o-mini-2024-07-18"


def _log(runtime: Runtime, job_id: str) -> list[tuple[int, str | None]]:
    """The job's log as (seq, provider event id), in sequence."""
    with session_scope(runtime.sessions) as session:
        rows = session.execute(
            select(JobEventRow.seq, JobEventRow.provider_event_id)
            .where(JobEventRow.job_id == job_id)
            .order_by(JobEventRow.seq)
        )
        return [(seq, provider_event_id) for seq, provider_event_id in rows]


def test_refreshes_record_each_provider_event_once_in_the_providers_order(
    sdk: openai.OpenAI, runtime: Runtime, emulator_url: str
) -> None:
    # Given a job followed to its end, refresh after refresh
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    submit(runtime, job.id)
    follow(runtime, job.id)

    # When its log is compared with the provider's
    with session_scope(runtime.sessions) as session:
        provider_job_id = session.get_one(JobRow, job.id).provider_job_id
    assert provider_job_id is not None
    provider = openai.OpenAI(base_url=emulator_url, api_key="sk-local", max_retries=0)
    theirs = [e.id for e in reversed(provider.fine_tuning.jobs.list_events(provider_job_id, limit=1000).data)]
    log = _log(runtime, job.id)

    # Then the sequence numbers run 1, 2, 3… and the provider's events come once each, in its order
    assert [seq for seq, _ in log] == list(range(1, len(log) + 1))
    assert [event_id for _, event_id in log if event_id is not None] == theirs


def test_a_snapshot_applied_twice_records_its_events_once(sdk: openai.OpenAI, runtime: Runtime) -> None:
    # Given a finished job and a snapshot of it fetched as if nothing were recorded yet
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    submit(runtime, job.id)
    follow(runtime, job.id)
    before = _log(runtime, job.id)
    with session_scope(runtime.sessions) as session:
        row = session.get_one(JobRow, job.id)
        assert row.provider_job_id is not None
        provider_job_id, provider_name = row.provider_job_id, row.provider
    provider = runtime.providers.fine_tuning(provider_name)
    snapshot = fetch_snapshot(provider, provider.retrieve_job(provider_job_id), Known())
    assert snapshot.events

    # When it is applied again, twice
    for _ in range(2):
        with session_scope(runtime.sessions) as session:
            apply_snapshot(session, session.get_one(JobRow, job.id), snapshot, access(runtime))

    # Then the log is as it was
    assert _log(runtime, job.id) == before
