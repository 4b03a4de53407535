"""Expire the uploads left pending past their hour, and delete their parts."""

from __future__ import annotations

from service.clock import utcnow
from service.tasks import TaskName
from service.uploads import service as uploads
from workers.celery_app import celery_app
from workers.runtime import get_runtime


@celery_app.task(name=TaskName.UPLOADS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_expired_uploads() -> None:
    runtime = get_runtime()
    uploads.sweep_expired(runtime.sessions, runtime.blobs, now=utcnow())
