"""Request dependencies of the emulator's routes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from emulator.runtime import Emulator


def get_emulator(request: Request) -> Emulator:
    return cast(Emulator, request.app.state.emulator)


CurrentEmulator = Annotated[Emulator, Depends(get_emulator)]


def advance_jobs(emulator: CurrentEmulator) -> None:
    """Bring every active job up to date before a request is served (progress is time-driven)."""
    emulator.engine.advance_all()
