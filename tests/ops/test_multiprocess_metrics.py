"""With several API worker processes, `/metrics` sums what every process counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from service.ops.multiprocess import MULTIPROC_ENV, exposition, prepare_for_workers

# A worker process: the app's metrics, one proxied request counted.
WORKER = """
from prometheus_client import CollectorRegistry
from service.usage.metering import ProxyMetrics
ProxyMetrics(CollectorRegistry()).requests.labels("tenant_a", "m").inc()
"""


def test_metrics_of_every_worker_process_are_summed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prometheus"
    (directory).mkdir()
    (directory / "stale.db").write_bytes(b"")  # a previous run's file: dropped at start
    monkeypatch.setenv(MULTIPROC_ENV, "")
    prepare_for_workers(directory)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], check=True, env={**os.environ}, timeout=60)

    text = exposition(CollectorRegistry()).decode()

    assert 'ftm_proxy_requests_total{model="m",tenant="tenant_a"} 2.0' in text
    assert not (directory / "stale.db").exists()


def test_one_process_exposes_its_own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    registry = CollectorRegistry()
    Counter("ftm_demo_total", "A demo.", registry=registry).inc(3)

    assert "ftm_demo_total 3.0" in exposition(registry).decode()
