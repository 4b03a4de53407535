"""The persisted job record (public fields + timeline state), its events, and how both are stored.

The record is stored as one JSON document per job. ``to_public()`` renders exactly the
``fine_tuning.job`` object of OpenAI's API; the fields after ``user_provided_suffix`` are the
emulator's own bookkeeping and are never shown.
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


def save_job(conn: sqlite3.Connection, job: JobRecord, *, new: bool = False) -> None:
    if new:
        conn.execute(
            "INSERT INTO jobs (id, status, doc) VALUES (?, ?, ?)", (job.id, job.status, job.model_dump_json())
        )
    else:
        before = conn.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone()
        conn.execute(
            "UPDATE jobs SET status = ?, doc = ? WHERE id = ?", (job.status, job.model_dump_json(), job.id)
        )
        if before is not None and before["status"] != job.status and job.status in FINAL_STATUSES:
            queue_webhook(conn, f"fine_tuning.job.{job.status}", job.id)
