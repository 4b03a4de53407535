"""A fleet of worker processes that each run `jobs.submit` for the same job at the same moment.

Each process is started with `spawn` (a clean interpreter, as a Celery worker on another machine
would be), builds its own runtime from the database URL, data directory and provider URL it is
given, and waits on a shared barrier before every submit, then a random moment (up to the order's
stagger), so the attempts race both head-on and interleaved with each other's provider calls.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from service.config import Settings
from service.jobs.access import PollPolicy, ProviderAccess, SubmitPolicy
from service.jobs.submission import submit
from service.runtime import Runtime

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@dataclass(frozen=True)
class Order:
    """Submit these jobs (in turn, each after the barrier) against this store and provider."""

    job_ids: tuple[str, ...]
    database_url: str
    data_dir: Path
    provider_url: str
    stagger_s: float = 0.3  # each submit starts at a random moment this soon after the barrier


def _serve(orders: Any, results: Any, barrier: Barrier) -> None:
    runtimes: dict[tuple[str, Path, str], Runtime] = {}
    while (order := orders.get()) is not None:
        key = (order.database_url, order.data_dir, order.provider_url)
        if key not in runtimes:
            settings = Settings(
                _env_file=None,
                data_dir=order.data_dir,
                database_url=order.database_url,
                redis_url=UNREACHABLE_REDIS,
                local_provider_base_url=order.provider_url,
            )
            runtimes[key] = Runtime(settings)
        runtime = runtimes[key]
        access = ProviderAccess(
            runtime.providers,
            runtime.blobs,
            PollPolicy.every(timedelta(0)),
            SubmitPolicy(lease=timedelta(seconds=30), max_attempts=50, backoff=timedelta(0)),
        )
        outcomes = []
        for job_id in order.job_ids:
            barrier.wait(60)
            time.sleep(random.uniform(0, order.stagger_s))
            try:
                outcomes.append(submit(runtime.sessions, job_id, access).value)
            except Exception as error:  # reported to the test, which fails on it
                outcomes.append(f"error: {type(error).__name__}: {error}")
        results.put(outcomes)
    for runtime in runtimes.values():
        runtime.providers.close()
        runtime.close()


class SubmitterFleet:
    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.size = size
        self._barrier = context.Barrier(size)
        self._results: Any = context.Queue()
        self._orders: list[Any] = [context.Queue() for _ in range(size)]
        self._processes: list[SpawnProcess] = [
            context.Process(target=_serve, args=(orders, self._results, self._barrier), daemon=True)
            for orders in self._orders
        ]
        for process in self._processes:
            process.start()

    def submit_together(self, order: Order | list[Order], timeout_s: float = 120) -> list[list[str]]:
        """Every process submits each job of its order at the same moment (one order for all, or
        one each); their outcomes."""
        each = order if isinstance(order, list) else [order] * self.size
        assert len(each) == self.size
        for orders, given in zip(self._orders, each, strict=True):
            orders.put(given)
        try:
            return [self._results.get(timeout=timeout_s) for _ in self._processes]
        except queue.Empty as empty:
            raise AssertionError("the submitter processes did not answer") from empty

    def close(self) -> None:
        for orders in self._orders:
            orders.put(None)
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.kill()
