"""The fine-tuning job lifecycle, driven by the emulator's clock rather than by polling.

``validating_files`` lasts one step's time, then the files are checked and the whole training run is
computed (``emulator.jobs.runs.prepare_run``); ``queued`` lasts one step; ``running`` reveals one training step per
``seconds_per_step`` (metric events, checkpoints for the last 3 epochs), then ``succeeded`` with the
model and the result file. Every timestamp comes from the timeline, not from when someone looked,
so ``advance`` can run lazily before any request (and from a background task) and a restarted
emulator simply catches up. ``paused`` freezes the timeline; resuming re-queues the job.

Catching up costs what is due, not what is active: ``advance_all`` (before every request, and the
ticker's round) takes only the jobs whose next milestone has come, from the ``due_at`` index
(``emulator.jobs.records``), and a request about one job brings that job's steps up to date
(``advance``). A thousand running jobs cost a request one indexed lookup, not a thousand.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from typing import Any

from emulator.clock import Clock
from emulator.errors import InvalidRequest
from emulator.jobs.artifacts import record_checkpoint, record_success
from emulator.jobs.records import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    JobError,
    JobRecord,
    due_job_ids,
    emit,
    ensure_due_index,
    load_job,
    method_object,
    save_job,
)
from emulator.jobs.runs import RunCache, prepare_run
from emulator.store import Store
from emulator.tokens import Tokenizers
from emulator.training.trainer import TrainingRun

DPO_AUTO_BETA = 0.1
logger = logging.getLogger(__name__)


class JobEngine:
    """Moves jobs along their timeline and applies pause / resume / cancel."""

    def __init__(self, *, store: Store, tokenizers: Tokenizers, clock: Clock) -> None:
        self.store = store
        self.tokenizers = tokenizers
        self.clock = clock
        self.runs = RunCache()
        with store.transaction() as conn:
            ensure_due_index(conn)

    def insert(self, job: JobRecord) -> None:
        with self.store.transaction() as conn:
            save_job(conn, job, new=True)
            emit(conn, job.id, job.phase_started, f"Created fine-tuning job: {job.id}")
            files = f"Validating training file: {job.training_file}"
            if job.validation_file:
                files += f" and validation file: {job.validation_file}"
            emit(conn, job.id, job.phase_started, files)

    def advance_all(self) -> None:
        """Apply every milestone that has come by now (status changes, checkpoints, ends), to the
        jobs it is due for: what any client can see of any job is then up to date."""
        with self.store.read() as conn:
            ids = due_job_ids(conn, self.clock.now())
        for job_id in ids:
            self.advance(job_id)

    def _advance_every_active(self) -> None:
        """Bring every active job fully up to date, its steps included (before a change of speed)."""
        with self.store.read() as conn:
            marks = ",".join("?" * len(ACTIVE_STATUSES))
            rows = conn.execute(
                f"SELECT id FROM jobs WHERE status IN ({marks}) ORDER BY seq", ACTIVE_STATUSES
            )
            ids = [row["id"] for row in rows.fetchall()]
        for job_id in ids:
            self.advance(job_id)

    def advance(self, job_id: str) -> None:
        """Apply everything that is due for one job by now."""
        while True:
            with self.store.read() as conn:
                job = load_job(conn, job_id)
            now = self.clock.now()
            if job.status != "validating_files" or now < job.phase_started + job.seconds_per_step:
                break
            outcome = self._prepare(job)  # the slow part, outside the lock
            with self.store.transaction() as conn:
                current = load_job(conn, job_id)
                if current.status == "validating_files":
                    self._validated(conn, current, outcome)
        with self.store.transaction() as conn:
            job = load_job(conn, job_id)
            before = job.model_dump_json()
            now = self.clock.now()
            if job.status == "queued" and now >= job.phase_started + job.seconds_per_step:
                self._start(conn, job)
            if job.status == "running":
                self._reveal(conn, job, now)
            if job.model_dump_json() != before:
                save_job(conn, job)

    def _prepare(self, job: JobRecord) -> TrainingRun | JobError:
        try:
            return prepare_run(self.store, self.tokenizers, job)
        except Exception as exc:  # a bug must fail this job, not every request that advances jobs
            logger.exception("training run of %s crashed", job.id)
            return JobError(code="internal_error", message=f"The emulator could not train this job: {exc!r}")

    def _validated(self, conn: sqlite3.Connection, job: JobRecord, outcome: TrainingRun | JobError) -> None:
        at = job.phase_started + job.seconds_per_step
        if isinstance(outcome, JobError):
            self._fail(conn, job, outcome, at)
            save_job(conn, job)
            return
        self.runs.save(conn, job.id, outcome)
        resolved: dict[str, Any] = {
            "n_epochs": outcome.n_epochs,
            "batch_size": outcome.batch_size,
            "learning_rate_multiplier": outcome.learning_rate_multiplier,
        }
        if job.method_type == "dpo":
            beta = job.hyperparameters.get("beta", "auto")
            resolved["beta"] = DPO_AUTO_BETA if beta == "auto" else beta
        job.hyperparameters = resolved
        job.method = method_object(job.method_type, resolved)
        job.total_steps = outcome.total_steps
        job.checkpoint_steps = sorted(outcome.snapshots)
        job.status, job.phase_started = "queued", at
        emit(conn, job.id, at, "Files validated, moving job to queued state")
        save_job(conn, job)

    def _start(self, conn: sqlite3.Connection, job: JobRecord) -> None:
        at = job.phase_started + job.seconds_per_step
        if job.anchor_time is None:
            emit(conn, job.id, at, "Fine-tuning job started")
        job.status, job.anchor_time, job.anchor_steps = "running", at, job.steps_done

    def _fail(self, conn: sqlite3.Connection, job: JobRecord, error: JobError, at: float) -> None:
        job.status, job.error, job.finished_at = "failed", error, int(at)
        emit(conn, job.id, at, error.message, level="error")

    def _reveal(self, conn: sqlite3.Connection, job: JobRecord, now: float) -> None:
        run = self.runs.load(conn, job.id)
        # Both are set when the job left validation.
        assert run is not None
        assert job.anchor_time is not None
        if job.checkpoint_steps is None:  # a record from before milestones were kept
            job.checkpoint_steps = sorted(run.snapshots)
        sps, anchor, base = job.seconds_per_step, job.anchor_time, job.anchor_steps
        target = min(run.total_steps, base + math.floor((now - anchor) / sps + 1e-9))
        if job.inject_failure:
            target = min(target, 1)
        for step in range(job.steps_done + 1, target + 1):
            at = anchor + (step - base) * sps
            self._metrics_event(conn, job, run, step, at)
            if step in run.snapshots:
                record_checkpoint(conn, job, run, step, at)
                emit(conn, job.id, at, f"Checkpoint created at step {step}")
        job.steps_done = max(job.steps_done, target)
        finished_at = anchor + (job.steps_done - base) * sps
        if job.inject_failure and job.steps_done >= 1:
            error = JobError(
                code="internal_error",
                message="Fine-tuning job failed: the local emulator injected a training failure.",
            )
            self._fail(conn, job, error, finished_at)
        elif job.steps_done >= run.total_steps:
            record_success(conn, self.store, job, run, finished_at)
            emit(conn, job.id, finished_at, "New fine-tuned model created")
            emit(conn, job.id, finished_at, "The job has successfully completed")

    def _metrics_event(
        self, conn: sqlite3.Connection, job: JobRecord, run: TrainingRun, step: int, at: float
    ) -> None:
        metrics = run.steps[step - 1]
        data: dict[str, Any] = metrics.model_dump(include={"step", "train_loss", "train_mean_token_accuracy"})
        data["total_steps"] = run.total_steps
        message = f"Step {step}/{run.total_steps}: training loss={metrics.train_loss:.4f}"
        if job.validation_file:
            data |= metrics.model_dump(exclude={"step", "train_loss", "train_mean_token_accuracy"})
            message += f", validation loss={metrics.valid_loss:.4f}"
            if metrics.full_valid_loss is not None:
                message += f", full validation loss={metrics.full_valid_loss:.4f}"
        emit(conn, job.id, at, message, kind="metrics", data=data)

    def pause(self, job_id: str) -> JobRecord:
        self.advance(job_id)
        with self.store.transaction() as conn:
            job = load_job(conn, job_id)
            if job.status not in ("queued", "running"):
                raise InvalidRequest(f"Job {job_id} cannot be paused: its status is {job.status}.")
            job.status = "paused"
            emit(conn, job.id, self.clock.now(), "Fine-tuning job paused")
            save_job(conn, job)
            return job

    def resume(self, job_id: str) -> JobRecord:
        with self.store.transaction() as conn:
            job = load_job(conn, job_id)
            if job.status != "paused":
                raise InvalidRequest(f"Job {job_id} cannot be resumed: its status is {job.status}.")
            now = self.clock.now()
            job.status, job.phase_started = "queued", now
            emit(conn, job.id, now, "Fine-tuning job resumed")
            save_job(conn, job)
            return job

    def cancel(self, job_id: str) -> JobRecord:
        self.advance(job_id)
        with self.store.transaction() as conn:
            job = load_job(conn, job_id)
            if job.status in FINAL_STATUSES:
                raise InvalidRequest(f"Job {job_id} cannot be cancelled: it has already {job.status}.")
            job.status = "cancelled"
            emit(conn, job.id, self.clock.now(), "Fine-tuning job cancelled")
            save_job(conn, job)
            return job

    def set_seconds_per_step(self, seconds: float) -> None:
        """Change the speed of every unfinished job from now on."""
        self._advance_every_active()  # the new speed re-anchors at the steps done by now
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM jobs WHERE status IN (?, ?, ?, ?)", (*ACTIVE_STATUSES, "paused")
            )
            now = self.clock.now()
            for row in rows.fetchall():
                job = load_job(conn, row["id"])
                if job.status == "running":
                    job.anchor_time, job.anchor_steps = now, job.steps_done
                elif job.status in ("validating_files", "queued"):
                    job.phase_started = min(job.phase_started, now)
                job.seconds_per_step = seconds
                save_job(conn, job)
