"""Settings of the local provider (the OpenAI-compatible emulator).

Every field mirrors an environment variable with the ``FTM_EMULATOR_`` prefix, e.g.
``FTM_EMULATOR_SECONDS_PER_STEP=0.01``. The fault knobs are only the starting values: they can be
changed on a running process through ``POST /_emulator/faults``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class EmulatorSettings(BaseSettings):
    """Configuration of one emulator process."""

    model_config = SettingsConfigDict(env_prefix="FTM_EMULATOR_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data/emulator"),
        description="Directory holding the SQLite state file and the uploaded file blobs.",
    )
    api_key: str = Field(default="sk-local", description="The bearer token the emulator accepts.")
    other_api_keys: list[str] = Field(
        default_factory=list,
        description="More bearer tokens it accepts, as other accounts' keys (a JSON list); which key "
        "made each request is counted at /_emulator/callers.",
    )
    seconds_per_step: float = Field(default=0.05, gt=0, description="Seconds per training step.")
    organization: str = Field(default="local", description="Organization id shown on jobs and models.")
    tick_seconds: float = Field(
        default=0.25,
        gt=0,
        description="How often the background task advances jobs while the app runs under a lifespan.",
    )

    # Webhooks about jobs, as OpenAI sends them to a project (emulator.webhooks).
    webhook_url: str | None = Field(
        default=None, description="Where to post fine_tuning.job.* events; unset: none are sent."
    )
    webhook_secret: str | None = Field(default=None, description="The `whsec_…` secret that signs them.")
    webhook_max_attempts: int = Field(default=8, ge=1, description="Attempts per event before giving up.")

    # Fault knobs (starting values; see emulator.faults.state).
    latency_ms: int = Field(default=0, ge=0, description="Delay added to every /v1 request.")
    rate_limit_next: int = Field(default=0, ge=0, description="The next N /v1 requests answer 429.")
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After sent with injected 429s.")
    server_error_next: int = Field(default=0, ge=0, description="The next N /v1 requests answer 5xx.")
    server_error_status: int = Field(default=500, ge=500, le=599, description="Status of injected 5xx.")
    drop_next: int = Field(default=0, ge=0, description="The next N /v1 requests lose their connection.")
    drop_phase: Literal["before", "after"] = Field(
        default="after",
        description="Drop before the request is handled, or after (the work is done, the answer lost).",
    )
    fail_jobs: int | bool = Field(
        default=False, description="true: every new job fails after starting; N: the next N new jobs do."
    )
    stream_chunk_delay_ms: int = Field(default=0, ge=0, description="Delay between streamed chunks.")
    fault_paths: list[str] = Field(
        default_factory=list,
        description="Only requests to these paths (concrete or templated) get faults; empty = all /v1.",
    )
    fault_methods: list[str] = Field(
        default_factory=list, description="Only requests with these methods get faults; empty = all."
    )
