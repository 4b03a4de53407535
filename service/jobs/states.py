"""The job status state machine: pure.

    validating_files -> queued -> running -> succeeded
           |              |  ^       |  \\-> failed
           |              |  |       v
           |              |  +--- paused
           +--------------+----------+----> failed | cancelled

A terminal status is never left: late or out-of-order provider reports cannot regress a job.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
ACTIVE = frozenset(Status) - TERMINAL

_ORDER = {Status.VALIDATING_FILES: 0, Status.QUEUED: 1, Status.RUNNING: 2, Status.PAUSED: 2}

WEBHOOK_EVENT = {
    Status.RUNNING: "fine_tuning.job.running",
    Status.SUCCEEDED: "fine_tuning.job.succeeded",
    Status.FAILED: "fine_tuning.job.failed",
    Status.CANCELLED: "fine_tuning.job.cancelled",
}


def can_transition(current: Status, new: Status) -> bool:
    """Whether `current -> new` is allowed. Staying put is allowed (and a no-op)."""
    if current == new:
        return True
    if current in TERMINAL:
        return False
    if new in TERMINAL:
        return True
    if {current, new} == {Status.RUNNING, Status.PAUSED}:
        return True
    if new == Status.QUEUED and current == Status.PAUSED:
        return True  # resumed
    return _ORDER[new] > _ORDER[current]


def parse(value: str) -> Status:
    return Status(value)
