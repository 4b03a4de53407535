"""Routes under ``/_emulator``: change faults and speed at run time, read request statistics.

Same bearer key as /v1; never subject to faults or latency themselves.
"""

from __future__ import annotations

from fastapi import APIRouter

from emulator.deps import CurrentEmulator
from emulator.faults.schemas import FaultConfig, FaultUpdate

router = APIRouter(prefix="/_emulator", tags=["emulator"])


@router.get("/faults")
def read_faults(emulator: CurrentEmulator) -> FaultConfig:
    """The knobs in force (counters show what is left)."""
    return emulator.faults.snapshot()


@router.post("/faults")
def change_faults(emulator: CurrentEmulator, body: FaultUpdate) -> FaultConfig:
    """Change some knobs; fields left out keep their value."""
    if body.seconds_per_step is not None:
        emulator.engine.set_seconds_per_step(body.seconds_per_step)
    return emulator.faults.update(body)


@router.delete("/faults")
def reset_faults(emulator: CurrentEmulator) -> FaultConfig:
    """Back to the knobs the emulator started with (the speed is kept)."""
    return emulator.faults.reset(seconds_per_step=emulator.faults.snapshot().seconds_per_step)


@router.get("/stats")
def read_stats(emulator: CurrentEmulator) -> dict[str, int]:
    """Requests handled per ``"METHOD /path/template"`` (requests refused by an injected fault excluded)."""
    return emulator.faults.stats()


@router.delete("/stats")
def reset_stats(emulator: CurrentEmulator) -> dict[str, int]:
    emulator.faults.reset_stats()
    return emulator.faults.stats()


@router.get("/callers")
def read_callers(emulator: CurrentEmulator) -> dict[str, dict[str, int]]:
    """Handled requests per caller: the bearer key's last 4 characters and the organization and
    project headers sent (``"…abcd org=org-1 pro=proj-1"``), then per ``"METHOD /path/template"``.
    Reset with the stats (``DELETE /_emulator/stats``)."""
    return emulator.faults.callers()
