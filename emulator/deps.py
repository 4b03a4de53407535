"""Request dependencies of the emulator's routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from emulator.runtime import Emulator


def get_emulator(request: Request) -> Emulator:
    return cast(Emulator, request.app.state.emulator)


CurrentEmulator = Annotated[Emulator, Depends(get_emulator)]


def advance_jobs(emulator: CurrentEmulator) -> None:
    """Apply every job's milestones that have come before a request is served (progress is
    time-driven); only the jobs they are due for are touched."""
    emulator.engine.advance_all()


def advance_job(emulator: CurrentEmulator, fine_tuning_job_id: str) -> None:
    """Bring the requested job fully up to date, its training steps (metrics events) included."""
    emulator.engine.advance(fine_tuning_job_id)
