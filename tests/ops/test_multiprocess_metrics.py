"""With several API worker processes, `/metrics` sums what every process counted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, Counter

from service.ops.multiprocess import MULTIPROC_ENV, exposition, metrics_shared_by_workers

# A worker process: the app's metrics, one proxied request counted.
WORKER = """
from prometheus_client import CollectorRegistry
from service.usage.metering import ProxyMetrics
ProxyMetrics(CollectorRegistry()).requests.labels("tenant_a", "m").inc()
"""


def test_metrics_of_every_worker_process_are_summed_and_their_files_removed_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with metrics_shared_by_workers() as directory:
        for _ in range(2):
            subprocess.run([sys.executable, "-c", WORKER], check=True, env={**os.environ}, timeout=60)
        text = exposition(CollectorRegistry()).decode()

    assert 'ftm_proxy_requests_total{model="m",tenant="tenant_a"} 2.0' in text
    assert not directory.exists()
    assert MULTIPROC_ENV not in os.environ


def test_one_process_exposes_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    registry = CollectorRegistry()
    Counter("ftm_demo_total", "A demo.", registry=registry).inc(3)

    assert "ftm_demo_total 3.0" in exposition(registry).decode()
