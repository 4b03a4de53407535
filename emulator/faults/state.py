"""The live fault knobs and request statistics of one emulator, adjustable while it runs.

Each /v1 request takes at most one counted fault, in the order rate limit, server error, drop;
the counters go down as requests take them. The knobs themselves are ``emulator.faults.schemas``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from emulator.faults.schemas import FaultConfig, FaultUpdate

Action = Literal["rate_limit", "server_error", "drop_before", "drop_after"]


@dataclass(frozen=True)
class Decision:
    """What to do to one request."""

    latency_s: float
    action: Action | None
    retry_after_s: float
    status: int


class FaultState:
    """The live knobs and per-route request counts of one emulator (thread-safe)."""

    def __init__(self, initial: FaultConfig) -> None:
        self._initial = initial.model_copy(deep=True)
        self._config = initial.model_copy(deep=True)
        self._lock = threading.Lock()
        self._handled: Counter[str] = Counter()
        self._callers: dict[str, Counter[str]] = {}

    def snapshot(self) -> FaultConfig:
        with self._lock:
            return self._config.model_copy(deep=True)

    def update(self, change: FaultUpdate) -> FaultConfig:
        with self._lock:
            merged = self._config.model_dump() | change.model_dump(exclude_none=True)
            self._config = FaultConfig.model_validate(merged)
            return self._config.model_copy(deep=True)

    def reset(self, *, seconds_per_step: float) -> FaultConfig:
        """Back to the settings' knobs, keeping the current speed."""
        with self._lock:
            self._config = self._initial.model_copy(update={"seconds_per_step": seconds_per_step}, deep=True)
            return self._config.model_copy(deep=True)

    def _targets(self, method: str, path: str, template: str) -> bool:
        config = self._config
        if config.methods and method.upper() not in {m.upper() for m in config.methods}:
            return False
        return not config.paths or path in config.paths or template in config.paths

    def take(self, method: str, path: str, template: str) -> Decision:
        """Decide (and consume) the faults for one /v1 request."""
        with self._lock:
            config = self._config
            if not self._targets(method, path, template):
                return Decision(0.0, None, config.retry_after_s, 200)
            action: Action | None = None
            if config.rate_limit_next > 0:
                config.rate_limit_next -= 1
                action = "rate_limit"
            elif config.server_error_next > 0:
                config.server_error_next -= 1
                action = "server_error"
            elif config.drop_next > 0:
                config.drop_next -= 1
                action = "drop_before" if config.drop_phase == "before" else "drop_after"
            return Decision(
                config.latency_ms / 1000, action, config.retry_after_s, config.server_error_status
            )

    def take_job_failure(self) -> bool:
        """Whether a job created now must fail (consumes one of ``fail_jobs`` when it is a count)."""
        with self._lock:
            value = self._config.fail_jobs
            if isinstance(value, bool):
                return value
            if value > 0:
                self._config.fail_jobs = value - 1
                return True
            return False

    def count(self, key: str, caller: str = "") -> None:
        with self._lock:
            self._handled[key] += 1
            self._callers.setdefault(caller, Counter())[key] += 1

    def callers(self) -> dict[str, dict[str, int]]:
        """Handled requests per caller (`…last4 org=… pro=…`), then per ``"METHOD /path/template"``."""
        with self._lock:
            return {caller: dict(sorted(counts.items())) for caller, counts in sorted(self._callers.items())}

    def stats(self) -> dict[str, int]:
        """Handled requests per ``"METHOD /path/template"``."""
        with self._lock:
            return dict(sorted(self._handled.items()))

    def reset_stats(self) -> None:
        with self._lock:
            self._handled.clear()
            self._callers.clear()
