"""The encodings validation leaves pending are counted by `files.count_tokens`, queued in the
validation's outcome; the file's status and status details do not change."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.config import Settings
from service.db import session_scope
from service.files import encodings
from service.files import service as files
from service.files.models import FileRow
from service.files.report import ValidationReport
from service.outbox.models import OutboxRow
from service.queueing import make_celery
from service.runtime import Runtime
from service.tasks import Queue, TaskName, queue_for
from tests.conftest import sdk_for
from tests.factories import JONNY_QA, jonny_dataset, make_jsonl


def _upload(client: TestClient, tenant_key: str, runtime: Runtime, body: bytes) -> str:
    created = sdk_for(client, tenant_key).files.create(
        file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune"
    )
    files.validate_file(runtime.sessions, runtime.blobs, created.id)
    return created.id


def _queued(runtime: Runtime) -> list[object]:
    with session_scope(runtime.sessions) as session:
        return list(
            session.scalars(select(OutboxRow.kwargs).where(OutboxRow.task_name == "files.count_tokens"))
        )


def test_a_validated_chat_file_queues_the_count_of_its_other_encoding_which_keeps_its_status(
    runtime: Runtime, tenant_key: str, client: TestClient
) -> None:
    sdk = sdk_for(client, tenant_key)
    file_id = _upload(client, tenant_key, runtime, jonny_dataset())
    before = sdk.files.retrieve(file_id)

    counted = encodings.count_pending_encodings(runtime.sessions, runtime.blobs, file_id)

    after = sdk.files.retrieve(file_id)
    with session_scope(runtime.sessions) as session:
        row = session.get(FileRow, file_id)
        assert row is not None
        report = ValidationReport.model_validate(row.report)
    assert _queued(runtime) == [{"file_id": file_id}]
    assert counted == ["cl100k_base"]
    assert (sorted(report.tokens), report.pending_encodings) == (["cl100k_base", "o200k_base"], [])
    assert (before.status, before.status_details) == (after.status, after.status_details)
    assert after.status == "processed"


def test_a_completion_file_has_nothing_left_to_count_after_validation(
    runtime: Runtime, tenant_key: str, client: TestClient
) -> None:
    rows = [{"prompt": q, "completion": " " + a} for q, a in JONNY_QA]
    file_id = _upload(client, tenant_key, runtime, make_jsonl(rows))

    counted = encodings.count_pending_encodings(runtime.sessions, runtime.blobs, file_id)

    assert (_queued(runtime), counted) == ([], [])


def test_an_invalid_file_queues_no_count(runtime: Runtime, tenant_key: str, client: TestClient) -> None:
    file_id = _upload(client, tenant_key, runtime, make_jsonl([{"messages": []}] * 12))

    assert sdk_for(client, tenant_key).files.retrieve(file_id).status == "error"
    assert _queued(runtime) == []


def test_the_count_runs_on_the_files_queue_with_the_validations_time_limit(settings: Settings) -> None:
    import workers.files_tasks  # noqa: F401  # a worker imports it through celery_app.conf.include
    from workers.celery_app import celery_app

    conf = make_celery(settings).conf

    assert TaskName.FILES_COUNT_TOKENS.value in celery_app.tasks
    assert queue_for(TaskName.FILES_COUNT_TOKENS) is Queue.FILES
    assert conf.task_annotations["files.count_tokens"] == conf.task_annotations["files.validate"]
