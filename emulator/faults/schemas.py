"""The fault and speed knobs, as read and changed through ``/_emulator/faults``.

``latency_ms`` delays every /v1 request; ``rate_limit_next`` / ``server_error_next`` /
``drop_next`` make the next N matching requests answer 429 (with Retry-After), 5xx, or lose their
connection (before the request is handled, or after it, so the work is done but the answer lost);
``fail_jobs`` makes new jobs fail after starting; ``seconds_per_step`` and
``stream_chunk_delay_ms`` set the speed. ``paths`` / ``methods`` restrict which requests the
latency and the counted faults apply to. They start from the settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from emulator.settings import EmulatorSettings


class FaultConfig(BaseModel):
    """The fault and speed knobs in force."""

    latency_ms: int = Field(default=0, ge=0)
    rate_limit_next: int = Field(default=0, ge=0)
    retry_after_s: float = Field(default=1.0, ge=0)
    server_error_next: int = Field(default=0, ge=0)
    server_error_status: int = Field(default=500, ge=500, le=599)
    drop_next: int = Field(default=0, ge=0)
    drop_phase: Literal["before", "after"] = "after"
    fail_jobs: int | bool = False
    seconds_per_step: float = Field(default=0.05, gt=0)
    stream_chunk_delay_ms: int = Field(default=0, ge=0)
    paths: list[str] = Field(default_factory=list)
    methods: list[str] = Field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: EmulatorSettings) -> FaultConfig:
        return cls(
            latency_ms=settings.latency_ms,
            rate_limit_next=settings.rate_limit_next,
            retry_after_s=settings.retry_after_s,
            server_error_next=settings.server_error_next,
            server_error_status=settings.server_error_status,
            drop_next=settings.drop_next,
            drop_phase=settings.drop_phase,
            fail_jobs=settings.fail_jobs,
            seconds_per_step=settings.seconds_per_step,
            stream_chunk_delay_ms=settings.stream_chunk_delay_ms,
            paths=settings.fault_paths,
            methods=settings.fault_methods,
        )


class FaultUpdate(BaseModel):
    """Body of ``POST /_emulator/faults``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0)
    rate_limit_next: int | None = Field(default=None, ge=0)
    retry_after_s: float | None = Field(default=None, ge=0)
    server_error_next: int | None = Field(default=None, ge=0)
    server_error_status: int | None = Field(default=None, ge=500, le=599)
    drop_next: int | None = Field(default=None, ge=0)
    drop_phase: Literal["before", "after"] | None = None
    fail_jobs: int | bool | None = None
    seconds_per_step: float | None = Field(default=None, gt=0)
    stream_chunk_delay_ms: int | None = Field(default=None, ge=0)
    paths: list[str] | None = None
    methods: list[str] | None = None
