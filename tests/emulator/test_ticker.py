"""The background ticker: jobs advance while nobody asks, and a failing round does not stop it."""

from __future__ import annotations

import asyncio

import openai
import pytest
from fastapi import FastAPI

from emulator.runtime import Emulator
from emulator.ticker import run_ticker, tick
from tests.emulator.clock import FakeClock
from tests.emulator.conftest import TO_THE_END, upload
from tests.emulator.samples import chat_jsonl


class _Stop(Exception):
    """Ends the ticker loop from its clock."""


class _CountingClock(FakeClock):
    """Sleeps instantly, and stops the ticker at its ``rounds``-th sleep."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.slept) == self.rounds:
            raise _Stop


def _stored_status(emulator: Emulator, job_id: str) -> str:
    with emulator.store.read() as conn:
        return str(conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()["status"])


def test_a_tick_finishes_a_job_that_nobody_polls(
    emulator_app: FastAPI, sdk: openai.OpenAI, clock: FakeClock
) -> None:
    # Given a job whose whole timeline has passed without a request
    emulator: Emulator = emulator_app.state.emulator
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(sdk, chat_jsonl()).id)
    clock.advance(TO_THE_END)
    assert _stored_status(emulator, job.id) == "validating_files"

    # When the ticker runs one round
    asyncio.run(tick(emulator))

    # Then the job has succeeded in storage
    assert _stored_status(emulator, job.id) == "succeeded"


def test_the_ticker_waits_tick_seconds_between_rounds_and_outlives_a_failing_one(
    emulator_app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an emulator whose first round of advancing jobs fails
    emulator: Emulator = emulator_app.state.emulator
    rounds: list[int] = []

    def advance_all() -> None:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")

    monkeypatch.setattr(emulator.engine, "advance_all", advance_all)
    emulator.clock = clock = _CountingClock(rounds=3)

    # When the ticker runs until its third wait
    with pytest.raises(_Stop):
        asyncio.run(run_ticker(emulator))

    # Then it waited tick_seconds before each round and carried on after logging the failure
    assert clock.slept == [emulator.settings.tick_seconds] * 3
    assert rounds == [1, 2]
    assert "advancing fine-tuning jobs failed" in caplog.messages
