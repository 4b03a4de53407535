"""Task names and queues, shared by the service (which enqueues by name) and the workers.

Queues separate kinds of work so that one cannot starve another.
"""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    MAINTENANCE = "maintenance"
    FILES = "files"
    JOBS = "jobs"
    WEBHOOKS = "webhooks"
    EVALS = "evals"


class TaskName(StrEnum):
    OUTBOX_RELAY = "outbox.relay"
    FILES_VALIDATE = "files.validate"
    FILES_PREPARE = "files.prepare"
    FILES_SWEEP = "files.sweep"
    JOBS_SUBMIT = "jobs.submit"
    JOBS_REFRESH = "jobs.refresh"
    JOBS_CANCEL = "jobs.cancel"
    JOBS_SWEEP = "jobs.sweep"
    WEBHOOKS_DELIVER = "webhooks.deliver"
    WEBHOOKS_SWEEP = "webhooks.sweep"
    UPLOADS_SWEEP = "uploads.sweep"
    DEDUP_SWEEP = "dedup.sweep"
    EVALS_RUN = "evals.run"
    EVALS_SWEEP = "evals.sweep"
    EVALS_EVALUATE_JOB = "evals.evaluate_job"
    EVALS_CONCLUDE_JOB = "evals.conclude_job"


def queue_for(task_name: str) -> Queue:
    """Sweeps and the relay are maintenance; everything else goes to its feature's queue."""
    feature, _, action = task_name.partition(".")
    if feature == "outbox" or action == "sweep":
        return Queue.MAINTENANCE
    return Queue(feature) if feature in {q.value for q in Queue} else Queue.MAINTENANCE
