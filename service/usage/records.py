"""What one proxied request used, and the in-process buffer that sums records before they are written.

Recording sums a batch of records (`service.usage.metering` gathers them off the requests' paths)
into a dictionary under one lock: it never touches the database or the network. The flusher (`service.usage.flusher`) takes the sums away in
batches; a batch that fails to be written is put back (`restore`) and tried again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from service.models.prices import inference_price


class UsageRecord(NamedTuple):
    """One proxied request: who asked, what served it, how it went and what it used.

    Tuples (this and `BucketKey`), made and hashed in C: one of each per request, where a frozen
    dataclass costs a Python-level `__setattr__` per field and a tuple built for each hash."""

    tenant_id: str
    key_id: str
    model: str  # the model that answered (for a deployment: the arm or fallback), else the one asked for
    provider: str  # "" when no provider was reached (refused before routing)
    status: int
    input_tokens: int
    output_tokens: int
    latency_s: float
    at: float  # unix seconds
    deployment: str = ""
    deployment_version: int = 0

    @property
    def failed(self) -> bool:
        return self.status >= 400


class BucketKey(NamedTuple):
    tenant_id: str
    key_id: str
    deployment: str
    deployment_version: int
    model: str
    provider: str
    hour: datetime


@dataclass
class Counters:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms_total: float = 0.0
    cost_usd: float | None = None

    def add(self, other: Counters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.latency_ms_total += other.latency_ms_total
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd


def hour_of(at: float) -> datetime:
    return datetime.fromtimestamp(at - at % 3600, UTC)


class UsageBuffer:
    """Sums of records by bucket, safe to add to from any thread."""

    def __init__(self, prices: Mapping[str, tuple[float, float]]) -> None:
        self._prices = prices
        self._sums: dict[BucketKey, Counters] = {}
        self._records = 0
        self._lock = threading.Lock()
        self._hour: tuple[float, datetime] = (-1.0, hour_of(0))  # the last hour seen: its start

    def add(self, record: UsageRecord) -> int:
        """Count `record`; returns how many records wait to be flushed."""
        return self.add_many([record])

    def add_many(self, records: list[UsageRecord]) -> int:
        """Count `records` (under one lock); returns how many records wait to be flushed."""
        buckets: dict[BucketKey, Counters] = {}
        prices: dict[str, tuple[float, float] | None] = {}
        for record in records:
            at = record.at
            start = at - at % 3600
            if start != self._hour[0]:  # a datetime made once an hour, not once a request
                self._hour = (start, hour_of(start))
            model = record.model
            key = BucketKey(
                record.tenant_id,
                record.key_id,
                record.deployment,
                record.deployment_version,
                model,
                record.provider,
                self._hour[1],
            )
            if model not in prices:
                prices[model] = inference_price(model, self._prices)
            price = prices[model]
            counters = buckets.get(key)
            if counters is None:
                counters = buckets[key] = Counters()
            counters.requests += 1
            counters.errors += record.status >= 400
            counters.input_tokens += record.input_tokens
            counters.output_tokens += record.output_tokens
            counters.latency_ms_total += record.latency_s * 1000
            if price is not None:
                cost = (record.input_tokens * price[0] + record.output_tokens * price[1]) / 1_000_000
                counters.cost_usd = (counters.cost_usd or 0.0) + cost
        with self._lock:
            sums = self._sums
            for key, counters in buckets.items():
                existing = sums.get(key)
                if existing is None:
                    sums[key] = counters
                else:
                    existing.add(counters)
            self._records += len(records)
            return self._records

    def take(self) -> dict[BucketKey, Counters]:
        """Everything summed so far, leaving the buffer empty."""
        with self._lock:
            taken, self._sums, self._records = self._sums, {}, 0
        return taken

    def restore(self, sums: Mapping[BucketKey, Counters]) -> None:
        """Put back a batch that could not be written, merged with what arrived meanwhile."""
        with self._lock:
            for key, counters in sums.items():
                existing = self._sums.get(key)
                if existing is None:
                    self._sums[key] = counters
                else:
                    existing.add(counters)
                self._records += counters.requests

    def __len__(self) -> int:
        with self._lock:
            return self._records
