"""Catching up costs what is due: a request advances only the jobs whose next milestone (a status
change, a checkpoint, the end) has come, and a job's steps in between are revealed, stamped on time,
when a request about that job needs them."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from emulator.app import create_app
from emulator.runtime import Emulator
from emulator.settings import EmulatorSettings
from emulator.ticker import tick
from tests.emulator.clock import FakeClock
from tests.emulator.conftest import STEP, TO_RUNNING, make_client, run_to_end, upload
from tests.emulator.samples import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"
# The Jonny file trains 91 steps (13 examples, 7 epochs); checkpoints end each of the last 3 epochs.
FIRST_CHECKPOINT = 65


def _stored(emulator: Emulator, sql: str, job_id: str) -> list[sqlite3.Row]:
    with emulator.store.read() as conn:
        return conn.execute(sql, (job_id,)).fetchall()


def _checkpoint_steps(emulator: Emulator, job_id: str) -> list[int]:
    rows = _stored(emulator, "SELECT step FROM checkpoints WHERE job_id = ? ORDER BY step", job_id)
    return [row["step"] for row in rows]


def _log(sdk: openai.OpenAI, job_id: str, created_at: int) -> list[tuple[int, str | None, str, object]]:
    """The job's events, oldest first, as (seconds since creation, type, message, data)."""
    events = reversed(sdk.fine_tuning.jobs.list_events(job_id, limit=1000).data)
    return [(e.created_at - created_at, e.type, e.message, e.data) for e in events]


def test_a_request_advances_only_the_jobs_whose_milestone_has_come(
    emulator_app: FastAPI, sdk: openai.OpenAI, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job a step into training (its next milestone is a checkpoint far ahead)
    # and a new job whose validation has just become due
    emulator: Emulator = emulator_app.state.emulator
    training = upload(sdk, chat_jsonl())
    training_job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    clock.advance(TO_RUNNING)
    assert sdk.fine_tuning.jobs.retrieve(training_job.id).status == "running"
    new_job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id)
    clock.advance(1.5 * STEP)
    advanced: list[str] = []
    advance = emulator.engine.advance

    def spy(job_id: str) -> None:
        advanced.append(job_id)
        advance(job_id)

    monkeypatch.setattr(emulator.engine, "advance", spy)

    # When a request about something else is served
    sdk.models.list()

    # Then only the job with a milestone due was advanced
    assert advanced == [new_job.id]
    assert sdk.fine_tuning.jobs.retrieve(new_job.id).status == "queued"


def test_steps_revealed_late_give_the_same_log_as_steps_revealed_as_they_pass(
    sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given two identical jobs (same file, same seed) started together
    training = upload(sdk, chat_jsonl())
    watched = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, seed=3)
    unwatched = sdk.fine_tuning.jobs.create(model=MODEL, training_file=training.id, seed=3)

    # When one's events are read after every step and the other's only once both have finished
    for _ in range(100):
        clock.advance(STEP)
        sdk.fine_tuning.jobs.list_events(watched.id, limit=1)
    assert run_to_end(sdk, clock, watched.id).status == "succeeded"

    # Then both logs hold the same events, stamped at the same points of their timelines
    watched_log = _log(sdk, watched.id, watched.created_at)
    unwatched_log = _log(sdk, unwatched.id, unwatched.created_at)
    assert [entry[0] for entry in watched_log if entry[1] == "metrics"] == list(range(3, 3 + 91))
    assert [(t, kind, data) for t, kind, _, data in unwatched_log] == [
        (t, kind, data) for t, kind, _, data in watched_log
    ]


def test_a_checkpoint_is_recorded_when_its_step_passes_whatever_is_asked(
    emulator_app: FastAPI, sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given a running job
    emulator: Emulator = emulator_app.state.emulator
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=upload(sdk, chat_jsonl()).id)
    clock.advance(TO_RUNNING)
    sdk.models.list()

    # When the clock passes its first checkpoint's step and a request about other things is served
    clock.advance(FIRST_CHECKPOINT * STEP)
    sdk.models.list()

    # Then the checkpoint (and its callable model) is there, though nobody asked about the job
    assert _checkpoint_steps(emulator, job.id) == [FIRST_CHECKPOINT]
    models = _stored(emulator, "SELECT id FROM models WHERE job_id = ?", job.id)
    assert [row["id"].endswith(f":ckpt-step-{FIRST_CHECKPOINT}") for row in models] == [True]


def test_an_injected_failure_is_applied_by_a_tick_right_after_the_first_step(
    emulator_app: FastAPI, sdk: openai.OpenAI, admin: TestClient, clock: FakeClock
) -> None:
    # Given a job set to fail, one step into training
    emulator: Emulator = emulator_app.state.emulator
    admin.post("/_emulator/faults", json={"fail_jobs": 1})
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=upload(sdk, chat_jsonl()).id)
    clock.advance(TO_RUNNING + STEP)

    # When the ticker runs one round
    asyncio.run(tick(emulator))

    # Then the job has failed in storage
    assert [row["status"] for row in _stored(emulator, "SELECT status FROM jobs WHERE id = ?", job.id)] == [
        "failed"
    ]


def test_a_data_dir_from_before_the_due_index_carries_on(
    emulator_app: FastAPI, emulator_settings: EmulatorSettings, clock: FakeClock, sdk: openai.OpenAI
) -> None:
    # Given a running job stored as an emulator without the due index left it
    job = sdk.fine_tuning.jobs.create(model=MODEL, training_file=upload(sdk, chat_jsonl()).id)
    clock.advance(TO_RUNNING)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "running"
    emulator_app.state.emulator.store.close()
    with sqlite3.connect(emulator_settings.data_dir / "emulator.sqlite3") as conn:
        doc = json.loads(conn.execute("SELECT doc FROM jobs WHERE id = ?", (job.id,)).fetchone()[0])
        del doc["checkpoint_steps"]
        conn.execute("UPDATE jobs SET doc = ? WHERE id = ?", (json.dumps(doc), job.id))
        conn.execute("DROP INDEX jobs_due")
        conn.execute("ALTER TABLE jobs DROP COLUMN due_at")

    # When an emulator opens it and the clock passes the first checkpoint's step
    app = create_app(emulator_settings, clock=clock, background_ticker=False)
    with TestClient(app) as http:
        again = make_client(http)
        clock.advance(FIRST_CHECKPOINT * STEP)
        again.models.list()

        # Then the checkpoint is recorded without a request about the job, and the job succeeds
        assert _checkpoint_steps(app.state.emulator, job.id) == [FIRST_CHECKPOINT]
        assert run_to_end(again, clock, job.id).status == "succeeded"
        assert _checkpoint_steps(app.state.emulator, job.id) == [65, 78, 91]
