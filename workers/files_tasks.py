"""Validate uploaded files; prepare large source files; sweep the blobs no file references."""

from __future__ import annotations

from datetime import timedelta

from service.clock import utcnow
from service.db import session_scope
from service.files import encodings, orphans, preparation_service
from service.files import service as files
from service.files.models import FileStatus
from service.files.personal import PersonalDataScanner
from service.jobs import refresh as jobs_refresh
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime


@celery_app.task(name=TaskName.FILES_VALIDATE.value, acks_late=True, ignore_result=True)
def validate_file(file_id: str) -> None:
    """Validate the file: its status is decided, and shown, after one tokenizer pass; the
    outcome's transaction queues `files.count_tokens` for its models' other encodings."""
    runtime = get_runtime()
    scanner = PersonalDataScanner(runtime.settings.personal_data_phone_region)
    status = files.validate_file(runtime.sessions, runtime.blobs, file_id, scanner=scanner)
    if status is not None and status != FileStatus.UPLOADED:
        # A crash before this only delays the waiting jobs until their next sweep.
        with session_scope(runtime.sessions) as session:
            jobs_refresh.kick_waiting_jobs(session, file_id)


@celery_app.task(name=TaskName.FILES_COUNT_TOKENS.value, acks_late=True, ignore_result=True)
def count_tokens(file_id: str) -> None:
    """Count a processed file's pending encodings (a second pass, with a file's time limit of its
    own) and complete its report; idempotent."""
    runtime = get_runtime()
    encodings.count_pending_encodings(runtime.sessions, runtime.blobs, file_id)


@celery_app.task(name=TaskName.FILES_PREPARE.value, acks_late=True, ignore_result=True)
def prepare_file(preparation_id: str) -> None:
    runtime = get_runtime()
    preparation_service.run_preparation(
        runtime.sessions,
        runtime.blobs,
        preparation_id,
        max_upload_bytes=runtime.settings.max_upload_bytes,
        default_policy=runtime.settings.personal_data_policy,
    )


@celery_app.task(name=TaskName.FILES_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_orphan_blobs() -> None:
    runtime = get_runtime()
    grace = timedelta(seconds=runtime.settings.blob_orphan_grace_s)
    orphans.sweep_orphans(runtime.sessions, runtime.blobs, now=utcnow(), grace=grace)
