"""What following jobs needs, built once from a process's runtime: the providers, the blob store,
how often to refresh, and how submits are claimed, retried and given up on."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from service.blobs.store import BlobStore
from service.cache_changes import Change, publish
from service.config import Settings
from service.providers.registry import ProviderRegistry
from service.runtime import Runtime

RETRY_AFTER_CAP = timedelta(hours=1)


@dataclass(frozen=True)
class SubmitPolicy:
    """A submit holds its claim for `lease` (renewed while it works). A failed attempt is tried
    again after an exponential backoff with jitter (or the provider's Retry-After when longer);
    after `max_attempts` the job fails."""

    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 10
    backoff: timedelta = timedelta(seconds=5)
    backoff_max: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmitPolicy:
        return cls(
            lease=timedelta(seconds=settings.job_submit_lease_s),
            max_attempts=settings.job_submit_max_attempts,
            backoff=timedelta(seconds=settings.job_submit_backoff_s),
            backoff_max=timedelta(seconds=settings.job_submit_backoff_max_s),
        )

    def retry_delay(self, attempt: int, retry_after_s: float | None = None) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        exponential = min(self.backoff * (1 << min(max(attempt - 1, 0), 30)), self.backoff_max)
        delay = exponential * random.uniform(0.8, 1.2)
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(timedelta(seconds=retry_after_s), RETRY_AFTER_CAP))
        return delay


@dataclass(frozen=True)
class PollPolicy:
    """How soon a job is looked at again after a refresh: every `running` while it runs, every
    `queued` before that (a job can wait at the provider for hours), each doubling after a refresh
    that brought nothing new, up to `longest`. A provider webhook makes it due at once."""

    running: timedelta = timedelta(seconds=10)
    queued: timedelta = timedelta(seconds=60)
    longest: timedelta = timedelta(minutes=10)

    @classmethod
    def every(cls, interval: timedelta) -> PollPolicy:
        """The same interval whatever happens (tests, a job to follow closely)."""
        return cls(running=interval, queued=interval, longest=interval)

    @classmethod
    def from_settings(cls, settings: Settings) -> PollPolicy:
        return cls(
            running=timedelta(seconds=settings.job_refresh_interval_s),
            queued=timedelta(seconds=settings.job_poll_queued_s),
            longest=timedelta(seconds=max(settings.job_poll_max_s, settings.job_refresh_interval_s)),
        )

    def delay(self, *, running: bool, quiet_polls: int) -> timedelta:
        base = self.running if running else self.queued
        return min(base * (1 << min(quiet_polls, 20)), max(self.longest, base))


@dataclass(frozen=True)
class ProviderAccess:
    """What following a job needs: the providers, the blob store, how often to look again, and the
    submit policy."""

    providers: ProviderRegistry
    blobs: BlobStore
    polls: PollPolicy
    submit: SubmitPolicy = field(default_factory=SubmitPolicy)
    # Tells the API processes about a committed change to a route (`service.cache_changes`).
    announce: Callable[[Change], None] = field(default=lambda change: None)
    # FTM_TRAINING_PRICES: what a job waiting for its file is estimated at for its tenant's budget
    training_prices: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> ProviderAccess:
        settings = runtime.settings
        return cls(
            providers=runtime.providers,
            blobs=runtime.blobs,
            polls=PollPolicy.from_settings(settings),
            submit=SubmitPolicy.from_settings(settings),
            announce=lambda change: publish(runtime.redis, change),
            training_prices=settings.training_prices,
        )
