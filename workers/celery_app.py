"""The Celery app: configuration from `service.queueing`, tasks from `workers.*_tasks`, and the
beat schedule of periodic sweeps. Start with `celery -A workers.celery_app worker` / `beat`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_ready,
)

from service.config import get_settings
from service.logs import REQUEST_ID_HEADER, configure_logging, request_id_var
from service.queueing import check_celery_config, make_celery
from service.tasks import TaskName

log = logging.getLogger(__name__)

settings = get_settings()
celery_app = make_celery(settings)
celery_app.conf.beat_scheduler = "workers.beat:LockedScheduler"
celery_app.conf.beat_schedule = {
    "outbox-relay": {
        "task": TaskName.OUTBOX_RELAY.value,
        "schedule": timedelta(seconds=settings.outbox_relay_interval_s),
        "options": {"expires": max(5.0, settings.outbox_relay_interval_s * 5)},
    },
    "jobs-sweep": {
        "task": TaskName.JOBS_SWEEP.value,
        "schedule": timedelta(seconds=settings.job_refresh_interval_s),
        "options": {"expires": settings.job_refresh_interval_s * 3},
    },
    "files-sweep": {
        "task": TaskName.FILES_SWEEP.value,
        "schedule": timedelta(seconds=settings.blob_sweep_interval_s),
        "options": {"expires": settings.blob_sweep_interval_s},
    },
    "uploads-sweep": {
        "task": TaskName.UPLOADS_SWEEP.value,
        "schedule": timedelta(seconds=settings.uploads_sweep_interval_s),
        "options": {"expires": settings.uploads_sweep_interval_s},
    },
    "evals-sweep": {
        "task": TaskName.EVALS_SWEEP.value,
        "schedule": timedelta(seconds=settings.evals_sweep_interval_s),
        "options": {"expires": settings.evals_sweep_interval_s * 3},
    },
    "webhooks-sweep": {
        "task": TaskName.WEBHOOKS_SWEEP.value,
        "schedule": timedelta(seconds=5),
        "options": {"expires": 15},
    },
    "dedup-sweep": {
        "task": TaskName.DEDUP_SWEEP.value,
        "schedule": timedelta(hours=1),
        "options": {"expires": 3600},
    },
}
celery_app.conf.include = [
    "workers.outbox_tasks",
    "workers.files_tasks",
    "workers.jobs_tasks",
    "workers.webhooks_tasks",
    "workers.uploads_tasks",
    "workers.dedup_tasks",
    "workers.evals_tasks",
]


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_logs(**_: Any) -> None:
    configure_logging(settings.log_level)


@worker_ready.connect
def _check_config(**_: Any) -> None:
    for problem in check_celery_config(celery_app.conf):
        log.error("celery configuration: %s", problem)


@task_prerun.connect
def _bind_request_id(task_id: str, task: Task[Any, Any], **_: Any) -> None:
    """Log lines of a task carry the id of the request that caused it, else the task's own id."""
    request_id_var.set(getattr(task.request, REQUEST_ID_HEADER, None) or f"task_{task_id}")


@task_postrun.connect
def _unbind_request_id(**_: Any) -> None:
    request_id_var.set(None)
