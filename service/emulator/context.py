"""The emulator's collaborators, built once per app and handed to routes as a dependency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request

from .faults import FaultState
from .lifecycle import JobEngine
from .registry import ModelRegistry
from .settings import EmulatorSettings
from .store import Store
from .tokens import Tokenizers


@dataclass
class Emulator:
    """Everything one emulator app works with."""

    settings: EmulatorSettings
    store: Store
    faults: FaultState
    tokenizers: Tokenizers
    engine: JobEngine
    registry: ModelRegistry
    clock: Callable[[], float]


def get_emulator(request: Request) -> Emulator:
    return cast(Emulator, request.app.state.emulator)


CurrentEmulator = Annotated[Emulator, Depends(get_emulator)]


def advance_jobs(emulator: CurrentEmulator) -> None:
    """Bring every active job up to date before a request is served (progress is time-driven)."""
    emulator.engine.advance_all()
