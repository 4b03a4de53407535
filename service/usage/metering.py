"""Usage accounting of the proxy: each request's `Meter` produces one `UsageRecord`, which goes to
the process's buffer (written in batches by the flusher) and to the Prometheus metrics.

A `Meter` is created when the request arrives and learns what served it as the proxy goes on
(`answered_by`); `finish` records it once: for a JSON answer once it is sent, for a stream when
the stream ends (finished, broken off or abandoned by the client: `finish_stream`), with the usage
it reported.
Recording is deferred: `finish` appends the record to a `LoopBatch`, and the records of every
request that finished within `FOLD_S` are summed into the buffer and the metrics together, off
every request's path (`flush` and `drain` fold at once: shutdown, a scrape, tests). The token
limits' correction (`on_usage`) is not deferred: the next request's headers already count it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker

from service.auth.service import Principal
from service.batching import LoopBatch
from service.config import Settings
from service.usage.capture import TokenUsage, UsageTap
from service.usage.flusher import UsageFlusher
from service.usage.records import UsageBuffer, UsageRecord

MAX_CACHED_SERIES = 10_000
FOLD_S = 0.05  # how late usage reaches the buffer and the metrics, at most
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ProxyMetrics:
    """Per tenant and model: requests, errors, tokens and latency of proxied requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        labels = ["tenant", "model"]
        self.requests = Counter(
            "ftm_proxy_requests_total", "Proxied inference requests.", labels, registry=registry
        )
        self.errors = Counter(
            "ftm_proxy_errors_total",
            "Proxied inference requests answered with an error status, by status.",
            [*labels, "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "ftm_proxy_tokens_total",
            "Tokens used by proxied requests, as the provider reported them, by kind (input|output).",
            [*labels, "kind"],
            registry=registry,
        )
        self.latency = Histogram(
            "ftm_proxy_request_duration_seconds",
            "Time from a proxied request's arrival to the end of its answer (a stream's last chunk).",
            labels,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    def observe(self, records: list[UsageRecord]) -> None:
        """Count `records`: one increment per series for the requests and tokens of a batch, and
        one latency sample per record."""
        sums: dict[tuple[str, str], list[int]] = {}
        errors: dict[tuple[str, str, int], int] = {}
        latencies: list[tuple[tuple[str, str], float]] = []
        for record in records:
            key = (record.tenant_id, record.model)
            total = sums.get(key)
            if total is None:
                total = sums[key] = [0, 0, 0]
            total[0] += 1
            total[1] += record.input_tokens
            total[2] += record.output_tokens
            if record.status >= 400:
                failed = (record.tenant_id, record.model, record.status)
                errors[failed] = errors.get(failed, 0) + 1
            latencies.append((key, record.latency_s))
        for key, (requests, input_tokens, output_tokens) in sums.items():
            series = self._series(key)
            series[0].inc(requests)
            if input_tokens:
                series[1].inc(input_tokens)
            if output_tokens:
                series[2].inc(output_tokens)
        for (tenant, model, status), count in errors.items():
            self.errors.labels(tenant, model, str(status)).inc(count)
        for key, latency in latencies:
            self._series(key)[3].observe(latency)

    def _series(self, key: tuple[str, str]) -> tuple[Any, Any, Any, Any]:
        children = self._children.get(key)
        return children if children is not None else self._children_of(key)

    def _children_of(self, key: tuple[str, str]) -> tuple[Any, Any, Any, Any]:
        """The labelled series of (tenant, model), looked up once: `labels()` costs a lock and a
        tuple of strings each time."""
        if len(self._children) >= MAX_CACHED_SERIES:
            self._children.clear()
        children = (
            self.requests.labels(*key),
            self.tokens.labels(*key, "input"),
            self.tokens.labels(*key, "output"),
            self.latency.labels(*key),
        )
        self._children[key] = children
        return children


class Metering:
    """The app's usage accounting: the flusher (with its buffer), the metrics, and the batch of
    records not yet counted in either."""

    def __init__(
        self,
        flusher: UsageFlusher,
        metrics: ProxyMetrics,
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.flusher = flusher
        self.metrics = metrics
        self.clock = clock
        self.timer = timer
        self.pending: LoopBatch[UsageRecord] = LoopBatch(self._count, delay_s=FOLD_S)

    def start(self, caller: Principal) -> Meter:
        return Meter(self, caller, self.timer())

    def drain(self) -> None:
        """Count every record still pending now (on the event loop's thread)."""
        self.pending.drain()

    def flush(self) -> bool:
        """Count what is pending and write the buffer now; False if the write failed."""
        self.drain()
        return self.flusher.flush()

    def _count(self, records: list[UsageRecord]) -> None:
        self.flusher.record_many(records)
        self.metrics.observe(records)


@dataclass(slots=True)
class Meter:
    """One request's accounting; `finish` records it (only the first call counts)."""

    metering: Metering
    caller: Principal
    started: float
    model: str = ""
    provider: str = ""
    deployment: str = ""
    deployment_version: int = 0
    on_usage: Callable[[TokenUsage], None] | None = None  # told the usage as soon as it is known
    _done: bool = False

    def answered_by(self, model: str, provider: str) -> None:
        self.model, self.provider = model, provider

    def finish(self, status: int, usage: TokenUsage | None = None) -> None:
        if self._done:
            return
        self._done = True
        metering = self.metering
        caller = self.caller
        metering.pending.add(
            UsageRecord(
                caller.tenant_id,
                caller.key_id,
                self.model,
                self.provider,
                status,
                usage.input_tokens if usage else 0,
                usage.output_tokens if usage else 0,
                metering.timer() - self.started,
                metering.clock(),
                self.deployment,
                self.deployment_version,
            )
        )
        if usage is not None and self.on_usage is not None:
            self.on_usage(usage)

    def finish_stream(self, status: int, tap: UsageTap) -> None:
        """Record a stream that ended (finished, broke off, or left by the caller) with the usage
        `tap` saw in it."""
        self.finish(status, tap.usage)


def create_metering(
    settings: Settings, sessions: sessionmaker[Session], registry: CollectorRegistry
) -> Metering:
    flusher = UsageFlusher(
        UsageBuffer(settings.inference_prices),
        sessions,
        interval_s=settings.usage_flush_interval_s,
        batch_records=settings.usage_flush_records,
    )
    return Metering(flusher, ProxyMetrics(registry))
