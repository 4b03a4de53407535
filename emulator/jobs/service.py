"""Creating fine-tuning jobs and reading them, their events and their checkpoints."""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Any

from emulator.clock import Clock
from emulator.errors import InvalidRequest
from emulator.faults.state import FaultState
from emulator.files.service import find_file
from emulator.ids import new_id
from emulator.jobs.lifecycle import JobEngine
from emulator.jobs.records import JobRecord, load_job, method_object
from emulator.jobs.schemas import JobCreate, requested_hyperparameters
from emulator.models.catalog import find_base_model
from emulator.store import Store


def _check_file(store: Store, file_id: str, param: str) -> None:
    row = find_file(store, file_id)
    if row is None:
        raise InvalidRequest(f"invalid {param}: {file_id}", param=param)
    if row["purpose"] != "fine-tune":
        raise InvalidRequest(
            f"File {file_id} has purpose '{row['purpose']}', but fine-tuning needs purpose 'fine-tune'.",
            param=param,
        )


def create_job(
    req: JobCreate,
    *,
    store: Store,
    engine: JobEngine,
    faults: FaultState,
    organization: str,
    clock: Clock,
) -> JobRecord:
    """Check the request and store a new job in ``validating_files`` (the files are read later)."""
    base = find_base_model(req.model)
    if base is None:
        raise InvalidRequest(
            f"Model {req.model} is not available for fine-tuning or does not exist.",
            param="model",
            code="model_not_available",
        )
    if req.method is not None and req.method.type == "reinforcement":
        raise InvalidRequest(
            "The local emulator does not support reinforcement fine-tuning.", param="method.type"
        )
    method_type, hyperparameters = requested_hyperparameters(req)
    if method_type == "dpo" and base.kind != "chat":
        raise InvalidRequest(f"Model {base.id} does not support DPO fine-tuning.", param="method.type")
    _check_file(store, req.training_file, "training_file")
    if req.validation_file is not None:
        _check_file(store, req.validation_file, "validation_file")
    now = clock.now()
    config = faults.snapshot()
    job = JobRecord(
        id=new_id("ftjob-"),
        created_at=int(now),
        model=base.id,
        organization_id=organization,
        status="validating_files",
        hyperparameters=hyperparameters,
        method=method_object(method_type, hyperparameters),
        seed=req.seed if req.seed is not None else random.SystemRandom().randrange(2_147_483_648),
        training_file=req.training_file,
        validation_file=req.validation_file,
        integrations=[i.model_dump(exclude_none=True) for i in req.integrations]
        if req.integrations
        else None,
        metadata=req.metadata,
        user_provided_suffix=req.suffix,
        method_type=method_type,
        seconds_per_step=config.seconds_per_step,
        phase_started=now,
        inject_failure=faults.take_job_failure(),
        planned_model=f"ft:{base.id}:{organization}:{req.suffix or ''}:{new_id('', 8)}",
    )
    engine.insert(job)
    return job


def _page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _cursor(conn: sqlite3.Connection, table: str, object_id: str | None, what: str) -> int | None:
    if object_id is None:
        return None
    row = conn.execute(f"SELECT seq FROM {table} WHERE id = ?", (object_id,)).fetchone()
    if row is None:
        raise InvalidRequest(f"No such {what}: {object_id}", param="after")
    return int(row["seq"])


def list_jobs(store: Store, *, after: str | None, limit: int, metadata: dict[str, str]) -> dict[str, Any]:
    """Jobs newest first, filtered by every ``metadata[key]=value`` given."""
    with store.read() as conn:
        before = _cursor(conn, "jobs", after, "fine-tuning job")
        rows = conn.execute(
            "SELECT doc FROM jobs WHERE seq < ? ORDER BY seq DESC", (before if before is not None else 2**62,)
        ).fetchall()
    jobs = []
    for row in rows:
        job = JobRecord.model_validate_json(row["doc"])
        if all((job.metadata or {}).get(key) == value for key, value in metadata.items()):
            jobs.append(job.to_public())
            if len(jobs) > limit:
                break
    return _page(jobs, limit)


def list_events(store: Store, job_id: str, *, after: str | None, limit: int) -> dict[str, Any]:
    """A job's events, newest first (``after`` continues to older ones)."""
    with store.read() as conn:
        load_job(conn, job_id)
        before = _cursor(conn, "events", after, "fine-tuning event")
        rows = conn.execute(
            "SELECT * FROM events WHERE job_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (job_id, before if before is not None else 2**62, limit + 1),
        ).fetchall()
    events = [
        {
            "id": row["id"],
            "object": "fine_tuning.job.event",
            "created_at": row["created_at"],
            "level": row["level"],
            "message": row["message"],
            "type": row["type"],
            "data": json.loads(row["data"]) if row["data"] is not None else {},
        }
        for row in rows
    ]
    return _page(events, limit)


def list_checkpoints(store: Store, job_id: str, *, after: str | None, limit: int) -> dict[str, Any]:
    """A job's checkpoints, newest first."""
    with store.read() as conn:
        load_job(conn, job_id)
        before = _cursor(conn, "checkpoints", after, "checkpoint")
        rows = conn.execute(
            "SELECT * FROM checkpoints WHERE job_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (job_id, before if before is not None else 2**62, limit + 1),
        ).fetchall()
    checkpoints = [
        {
            "id": row["id"],
            "object": "fine_tuning.job.checkpoint",
            "created_at": row["created_at"],
            "fine_tuned_model_checkpoint": row["model"],
            "fine_tuning_job_id": row["job_id"],
            "step_number": row["step"],
            "metrics": json.loads(row["metrics"]),
        }
        for row in rows
    ]
    data = _page(checkpoints, limit)
    data["first_id"] = checkpoints[0]["id"] if checkpoints else None
    data["last_id"] = checkpoints[min(limit, len(checkpoints)) - 1]["id"] if checkpoints else None
    return data
