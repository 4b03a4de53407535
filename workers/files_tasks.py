"""Validate uploaded files; sweep the blobs no file references."""

from __future__ import annotations

from datetime import timedelta

from service.clock import utcnow
from service.db import session_scope
from service.files import orphans
from service.files import service as files
from service.jobs import refresh as jobs_refresh
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime


@celery_app.task(name=TaskName.FILES_VALIDATE.value, acks_late=True, ignore_result=True)
def validate_file(file_id: str) -> None:
    runtime = get_runtime()
    with session_scope(runtime.sessions) as session:
        row = files.validate_file(session, runtime.blobs, file_id)
        if row is not None and row.status != "uploaded":
            jobs_refresh.kick_waiting_jobs(session, file_id)


@celery_app.task(name=TaskName.FILES_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_orphan_blobs() -> None:
    runtime = get_runtime()
    grace = timedelta(seconds=runtime.settings.blob_orphan_grace_s)
    orphans.sweep_orphans(runtime.sessions, runtime.blobs, now=utcnow(), grace=grace)
