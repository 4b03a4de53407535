"""Settings, read from `FTM_*` environment variables and an optional `.env` file.

Every field mirrors its environment variable (`database_url` is `FTM_DATABASE_URL`) and appears in
the README's configuration table.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.providers.credentials import parse_keys
from service.webhooks.urls import AllowList

MIN_METRICS_TOKEN_CHARS = 16


class ProviderSpec(BaseModel):
    """A provider of `FTM_PROVIDERS` / `FTM_PROVIDERS_FILE`. `models` are the model names (or
    shell-style patterns, `gpt-4o-*`) it serves: a catalog model matching one goes to this provider
    rather than the default one, and an exact name outside the catalog becomes callable through the
    proxy. The key is `api_key`, or read from the variable `api_key_env`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    base_url: str = Field(min_length=1)
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_env: str | None = None
    models: list[str] = Field(default_factory=list)

    def key(self) -> str:
        """The API key: given, or from its variable ('' when neither is set)."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""

    def secret(self) -> str | None:
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value()
        return os.environ.get(self.webhook_secret_env) if self.webhook_secret_env else None


class Settings(BaseSettings):
    """Runtime configuration of the API, workers, beat and the dev stack."""

    # Errors never echo the input: it holds secrets (keys, tokens).
    model_config = SettingsConfigDict(
        env_prefix="FTM_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["dev", "prod"] = "dev"
    data_dir: Path = Path("data")
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # /metrics and the interactive docs answer anyone who can reach the port, so in prod they are
    # off unless asked for. A metrics token, when set, guards /metrics in every env.
    metrics_token: SecretStr | None = None
    docs_enabled: bool = Field(default_factory=lambda data: data.get("env") == "dev")

    bootstrap_api_key: SecretStr | None = None

    # Providers. The local provider is the built-in emulator; OpenAI is used when a key is set.
    default_provider: str = "local"
    local_provider_base_url: str = "http://127.0.0.1:8100/v1"
    local_provider_api_key: SecretStr = SecretStr("sk-local")
    local_provider_port: int = 8100
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FTM_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str = "https://api.openai.com/v1"
    # The signing secrets of the webhooks each provider sends to /providers/{name}/webhooks
    # (OpenAI's from its dashboard); unset: that provider's webhooks are refused, polling alone.
    openai_webhook_secret: SecretStr | None = None
    local_provider_webhook_secret: SecretStr | None = None
    # More OpenAI-compatible providers (a JSON list, or a JSON file of one): each with a name, a base
    # URL, a key (or the variable holding it) and the models it serves; see ProviderSpec.
    providers: list[ProviderSpec] = Field(default_factory=list)
    providers_file: Path | None = None
    # Encrypts tenants' own provider credentials at rest: Fernet keys, comma-separated; the first
    # encrypts, any decrypts (rotation). Unset: tenants cannot set credentials (503).
    credentials_key: SecretStr | None = None

    # File bodies. `dir` keeps them under FTM_DATA_DIR/blobs, which every api and worker process
    # must then share; `s3` keeps them in an S3-compatible bucket, so they can run anywhere.
    blob_store: Literal["dir", "s3"] = "dir"
    s3_bucket: str = ""
    s3_endpoint_url: str | None = None  # unset: AWS S3
    s3_region: str | None = None
    s3_access_key_id: str | None = None  # unset: boto3's own chain (AWS_* variables, instance role)
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = "blobs/"
    s3_part_size_mib: int = Field(default=8, ge=5, le=5 * 1024)
    blob_orphan_grace_s: float = Field(default=3600.0, ge=60)
    blob_sweep_interval_s: float = Field(default=600.0, gt=0)

    # Limits.
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_json_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # /v1/uploads: a file of up to this many bytes, sent in parts of up to 64 MiB each, within an
    # hour of the upload's creation (OpenAI's limits); a sweep expires the rest.
    uploads_max_bytes: int = Field(default=8 * 1024**3, gt=0)
    uploads_max_part_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    uploads_expire_after_s: float = Field(default=3600.0, gt=0)
    uploads_sweep_interval_s: float = Field(default=60.0, gt=0)
    # source files up to this size are prepared in the request, larger ones by a worker
    preparation_inline_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # model -> US dollars per million training tokens, over service/models/prices.py's table
    training_prices: dict[str, float] = Field(default_factory=dict)
    # model -> [input, output] US dollars per million tokens, over service/models/prices.py's table;
    # `ft:BASE` prices the fine-tunes of BASE
    inference_prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    # Personal data in uploads: the policy when neither the upload nor its tenant names one, and
    # the country numbers without a +country code are read as (phonenumbers' region code).
    personal_data_policy: Literal["warn", "redact", "reject"] = "warn"
    personal_data_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    provider_timeout_s: float = Field(default=30.0, gt=0)
    proxy_timeout_s: float = Field(default=120.0, gt=0)
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0)
    # How long an API process trusts a cached route; changes arrive sooner through Redis pub/sub,
    # so this is only the backstop while Redis is unreachable.
    route_cache_ttl_s: float = Field(default=5.0, ge=0)

    # Usage: buffered in each API process, written every interval or once this many requests wait.
    usage_flush_interval_s: float = Field(default=1.0, gt=0)
    usage_flush_records: int = Field(default=1000, ge=1)
    # Serve the proxy's routes on the lean ASGI path in front of FastAPI (false: through FastAPI).
    lean_proxy: bool = True
    # Per-minute limits of the proxy, defaults for keys and tenants that set none (0: no limit).
    key_requests_per_minute: int = Field(default=0, ge=0)
    key_tokens_per_minute: int = Field(default=0, ge=0)
    tenant_requests_per_minute: int = Field(default=0, ge=0)
    tenant_tokens_per_minute: int = Field(default=0, ge=0)
    rate_limit_redis_timeout_s: float = Field(default=0.1, gt=0)
    rate_limit_breaker_s: float = Field(default=5.0, ge=0)

    # Celery and sweeps.
    celery_visibility_timeout_s: int = Field(default=3600, ge=10)
    celery_task_time_limit_s: int = Field(default=300, ge=5)
    files_validate_time_limit_s: int = Field(default=0, ge=0)  # 0: 1500, within half the visibility timeout
    outbox_relay_interval_s: float = Field(default=1.0, gt=0)
    job_refresh_interval_s: float = Field(default=10.0, gt=0)
    # Following a job: every FTM_JOB_REFRESH_INTERVAL_S while it runs, every FTM_JOB_POLL_QUEUED_S
    # before; doubling after a refresh that brought nothing new, up to FTM_JOB_POLL_MAX_S.
    job_poll_queued_s: float = Field(default=60.0, gt=0)
    job_poll_max_s: float = Field(default=600.0, gt=0)
    job_submit_lease_s: float = Field(default=60.0, ge=1)
    job_submit_max_attempts: int = Field(default=10, ge=1)
    job_submit_backoff_s: float = Field(default=5.0, ge=0)
    job_submit_backoff_max_s: float = Field(default=900.0, ge=0)
    beat_lock_ttl_s: int = Field(default=30, ge=3)

    # Webhooks (service.webhooks). Allowed destinations: comma-separated networks and host names
    # (`10.20.0.0/16,hooks.internal,*.corp.example`) that webhooks may reach although they are not
    # public; unset: loopback in dev, nothing in prod.
    webhook_allowed_destinations: str | None = None
    webhook_concurrency: int = Field(default=50, ge=1, le=1000)  # requests in flight per worker process
    webhook_endpoint_concurrency: int = Field(default=8, ge=1, le=1000)  # of them, to one endpoint
    # Multiplies the retry schedule (5 s, 5 min, 30 min, ...): below 1 only for demos and e2e tests.
    webhook_retry_delay_scale: float = Field(default=1.0, gt=0, le=1)

    # Evaluation runs (service.evals)
    evals_max_items: int = Field(default=10_000, ge=1)
    evals_batch_size: int = Field(default=20, ge=1, le=1000)  # items claimed at a time
    evals_concurrency: int = Field(default=4, ge=1, le=64)  # model calls in flight per run
    evals_tenant_runs: int = Field(default=2, ge=1)  # runs of one tenant in progress at once
    evals_run_slice_s: float = Field(default=60.0, gt=0)  # one task's share of a run before it yields
    evals_lease_s: float = Field(default=120.0, ge=2)  # a dead worker's run is taken over after this
    evals_backoff_s: float = Field(default=2.0, ge=0)  # after a 429/5xx without Retry-After
    evals_sweep_interval_s: float = Field(default=5.0, gt=0)
    evals_embedding_model: str = "text-embedding-3-small"  # cosine similarity's embeddings
    evals_wordnet_dir: str | None = "/usr/share/wordnet"  # a WordNet 3.0 dict directory, for meteor

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.openai_api_key is not None and not self.openai_api_key.get_secret_value().strip():
            self.openai_api_key = None  # compose passes an unset OPENAI_API_KEY as ""
        if self.metrics_token is not None:
            token = self.metrics_token.get_secret_value().strip()
            if token and len(token) < MIN_METRICS_TOKEN_CHARS:
                raise ValueError(f"FTM_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_CHARS} characters")
            self.metrics_token = SecretStr(token) if token else None
        self._derive_blob_store()
        if self.webhook_allowed_destinations is not None:
            AllowList.parse(self.webhook_allowed_destinations.split(","))
        self._load_providers_file()
        self._check_credentials_key()
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'ftm.db').as_posix()}"
        if self.celery_task_time_limit_s * 2 > self.celery_visibility_timeout_s:
            raise ValueError(
                "FTM_CELERY_TASK_TIME_LIMIT_S must be at most half of FTM_CELERY_VISIBILITY_TIMEOUT_S"
            )
        if not self.files_validate_time_limit_s:
            half = self.celery_visibility_timeout_s // 2
            self.files_validate_time_limit_s = max(self.celery_task_time_limit_s, min(1500, half))
        if self.files_validate_time_limit_s * 2 > self.celery_visibility_timeout_s:
            raise ValueError(
                "FTM_FILES_VALIDATE_TIME_LIMIT_S must be at most half of FTM_CELERY_VISIBILITY_TIMEOUT_S"
            )
        return self

    def _load_providers_file(self) -> None:
        """Add the providers of FTM_PROVIDERS_FILE (a JSON list) to FTM_PROVIDERS'; names are unique."""
        if self.providers_file is not None:
            try:
                listed = json.loads(self.providers_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ValueError(f"FTM_PROVIDERS_FILE {self.providers_file}: {error}") from None
            self.providers = [*self.providers, *TypeAdapter(list[ProviderSpec]).validate_python(listed)]
        names = [spec.name for spec in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique: {names}")

    def _check_credentials_key(self) -> None:
        raw = self.credentials_key.get_secret_value().strip() if self.credentials_key else ""
        self.credentials_key = SecretStr(raw) if raw else None  # compose passes an unset one as ""
        if raw:
            parse_keys(raw)

    def _derive_blob_store(self) -> None:
        # compose passes unset variables as "": they mean "not set" here.
        for name in ("s3_endpoint_url", "s3_region", "s3_access_key_id"):
            if not (getattr(self, name) or "").strip():
                setattr(self, name, None)
        if self.s3_secret_access_key is not None and not self.s3_secret_access_key.get_secret_value():
            self.s3_secret_access_key = None
        self.s3_prefix = self.s3_prefix.strip("/") + "/" if self.s3_prefix.strip("/") else ""
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ValueError("FTM_S3_BUCKET must be set when FTM_BLOB_STORE=s3")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests build `Settings(...)` directly instead."""
    return Settings()
