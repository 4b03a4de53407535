"""Work through eval runs, and sweep the runs that are due (queued, backing off, or whose worker died);
start and conclude succeeded jobs' evaluations (and the gated promotions waiting on them)."""

from __future__ import annotations

import logging

from service.cache_changes import publish
from service.db import session_scope
from service.evals import job_evaluations, job_outcomes, runner
from service.tasks import TaskName
from workers.celery_app import celery_app
from workers.runtime import get_runtime

log = logging.getLogger(__name__)


@celery_app.task(name=TaskName.EVALS_RUN.value, acks_late=True, ignore_result=True)
def run_eval(run_id: str) -> str:
    runtime = get_runtime()
    outcome = runner.process_run(runtime.sessions, runtime.providers, runtime.settings, run_id)
    log.info("evals.run %s: %s", run_id, outcome)
    return outcome.value


@celery_app.task(name=TaskName.EVALS_SWEEP.value, acks_late=True, ignore_result=True)
def sweep_evals() -> int:
    runtime = get_runtime()
    with session_scope(runtime.sessions) as session:
        return runner.sweep(session, runtime.settings) + job_outcomes.sweep(session)


@celery_app.task(name=TaskName.EVALS_EVALUATE_JOB.value, acks_late=True, ignore_result=True)
def evaluate_job(evaluation_id: str) -> None:
    runtime = get_runtime()
    with session_scope(runtime.sessions) as session:
        job_evaluations.start(session, runtime.blobs, runtime.settings, evaluation_id)


@celery_app.task(name=TaskName.EVALS_CONCLUDE_JOB.value, acks_late=True, ignore_result=True)
def conclude_job(job_id: str) -> None:
    runtime = get_runtime()
    with session_scope(runtime.sessions) as session:
        changes = job_outcomes.conclude(session, job_id)
    for change in changes:  # committed: every API process drops what it cached for these
        publish(runtime.redis, change)
