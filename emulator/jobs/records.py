"""The persisted job record (public fields + timeline state), its events, and how both are stored.

The record is stored as one JSON document per job. ``to_public()`` renders exactly the
``fine_tuning.job`` object of OpenAI's API; the fields after ``user_provided_suffix`` are the
emulator's own bookkeeping and are never shown.

Beside the document, each row keeps ``due_at``: when the job's next *milestone* comes (it leaves
``validating_files`` or ``queued``, reaches a checkpoint, fails or succeeds), indexed, so bringing
every job up to date before a request touches only the jobs whose milestone has come rather than
every active one. The training steps between milestones only add metrics events to the job's own
log; they are revealed when a request about that job needs them (``JobEngine.advance``), stamped
from the timeline as before, so nothing a client can see depends on when they were written.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any, Literal

from pydantic import BaseModel, Field

from emulator.errors import NotFound
from emulator.ids import new_id
from emulator.webhooks import queue_webhook

JobStatus = Literal["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("validating_files", "queued", "running")
FINAL_STATUSES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")

PUBLIC_FIELDS = frozenset(
    "id created_at finished_at model fine_tuned_model organization_id status error hyperparameters method"
    " result_files seed trained_tokens training_file validation_file integrations metadata user_provided_suffix".split()
)


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobRecord(BaseModel):
    """One fine-tuning job as stored."""

    id: str
    created_at: int
    finished_at: int | None = None
    model: str
    fine_tuned_model: str | None = None
    organization_id: str
    status: JobStatus
    error: JobError | None = None
    hyperparameters: dict[str, Any]
    method: dict[str, Any]
    result_files: list[str] = Field(default_factory=list)
    seed: int
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    user_provided_suffix: str | None = None
    # Bookkeeping (not part of the API object).
    method_type: Literal["supervised", "dpo"] = "supervised"
    seconds_per_step: float
    phase_started: float
    steps_done: int = 0
    total_steps: int | None = None
    anchor_time: float | None = None
    anchor_steps: int = 0
    inject_failure: bool = False
    planned_model: str
    # The run's checkpoint steps (set when the job leaves validation): milestones of its timeline.
    checkpoint_steps: list[int] | None = None

    def due_at(self) -> float | None:
        """When the job's next milestone comes, by its timeline; None while none will come by
        itself (paused, finished)."""
        if self.status in ("validating_files", "queued"):
            return self.phase_started + self.seconds_per_step
        if self.status != "running" or self.anchor_time is None or self.total_steps is None:
            return None
        step = self.steps_done + 1  # an injected failure comes at step 1; an unknown plan, every step
        if self.checkpoint_steps is not None and not self.inject_failure:
            step = min([s for s in self.checkpoint_steps if s > self.steps_done] + [self.total_steps])
        # The same threshold as the reveal's floor((now - anchor) / sps + 1e-9) >= step - anchor_steps.
        return self.anchor_time + (step - self.anchor_steps - 1e-9) * self.seconds_per_step

    def estimated_finish(self) -> int | None:
        if self.total_steps is None or self.status not in ("queued", "running"):
            return None
        if self.status == "running" and self.anchor_time is not None:
            start, done = self.anchor_time, self.anchor_steps
        else:
            start, done = self.phase_started + self.seconds_per_step, self.steps_done
        return math.ceil(start + (self.total_steps - done) * self.seconds_per_step)

    def to_public(self) -> dict[str, Any]:
        """The ``fine_tuning.job`` object."""
        public = self.model_dump(include=set(PUBLIC_FIELDS))
        public["object"] = "fine_tuning.job"
        public["estimated_finish"] = self.estimated_finish()
        return public


def method_object(method_type: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The job's ``method`` field for these hyperparameters."""
    return {"type": method_type, method_type: {"hyperparameters": dict(hyperparameters)}}


def emit(
    conn: sqlite3.Connection,
    job_id: str,
    at: float,
    message: str,
    *,
    level: str = "info",
    kind: str = "message",
    data: dict[str, Any] | None = None,
) -> None:
    """Append one ``fine_tuning.job.event``."""
    conn.execute(
        "INSERT INTO events (id, job_id, created_at, level, type, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            new_id("ftevent-"),
            job_id,
            int(at),
            level,
            kind,
            message,
            json.dumps(data) if data is not None else None,
        ),
    )


def load_job(conn: sqlite3.Connection, job_id: str) -> JobRecord:
    row = conn.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"Could not find fine-tuning job {job_id}.", param="fine_tuning_job_id")
    return JobRecord.model_validate_json(row["doc"])


def ensure_due_index(conn: sqlite3.Connection) -> None:
    """Add the ``due_at`` column and its index to a jobs table that lacks them (a data_dir written
    before they existed); its active jobs are due at once, and get their real time when advanced."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "due_at" not in columns:
        conn.execute("ALTER TABLE jobs ADD COLUMN due_at REAL")
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        conn.execute(f"UPDATE jobs SET due_at = 0 WHERE status IN ({marks})", ACTIVE_STATUSES)
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_at)")


def due_job_ids(conn: sqlite3.Connection, now: float) -> list[str]:
    """The jobs whose next milestone has come by ``now``, soonest first."""
    rows = conn.execute("SELECT id FROM jobs WHERE due_at <= ? ORDER BY due_at, seq", (now,))
    return [row["id"] for row in rows.fetchall()]


def save_job(conn: sqlite3.Connection, job: JobRecord, *, new: bool = False) -> None:
    if new:
        conn.execute(
            "INSERT INTO jobs (id, status, doc, due_at) VALUES (?, ?, ?, ?)",
            (job.id, job.status, job.model_dump_json(), job.due_at()),
        )
    else:
        before = conn.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone()
        conn.execute(
            "UPDATE jobs SET status = ?, doc = ?, due_at = ? WHERE id = ?",
            (job.status, job.model_dump_json(), job.due_at(), job.id),
        )
        if before is not None and before["status"] != job.status and job.status in FINAL_STATUSES:
            queue_webhook(conn, f"fine_tuning.job.{job.status}", job.id)
