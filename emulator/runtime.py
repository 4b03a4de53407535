"""The collaborators of one emulator app, built once by ``create_app`` and shared by its routes."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.clock import Clock
from emulator.faults.schemas import FaultConfig
from emulator.faults.state import FaultState
from emulator.jobs.lifecycle import JobEngine
from emulator.models.registry import ModelRegistry
from emulator.settings import EmulatorSettings
from emulator.store import Store
from emulator.tokens import Tokenizers


@dataclass
class Emulator:
    """Everything one emulator app works with."""

    settings: EmulatorSettings
    clock: Clock
    store: Store
    faults: FaultState
    tokenizers: Tokenizers
    engine: JobEngine
    registry: ModelRegistry


def build_emulator(settings: EmulatorSettings, clock: Clock) -> Emulator:
    """An emulator with its state under ``settings.data_dir`` (created, or reopened as it was left)."""
    store = Store(settings.data_dir)
    tokenizers = Tokenizers()
    engine = JobEngine(store=store, tokenizers=tokenizers, clock=clock)
    return Emulator(
        settings=settings,
        clock=clock,
        store=store,
        faults=FaultState(FaultConfig.from_settings(settings)),
        tokenizers=tokenizers,
        engine=engine,
        registry=ModelRegistry(store, engine.runs),
    )
