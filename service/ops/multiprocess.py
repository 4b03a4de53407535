"""Prometheus metrics that are right when `ftm api --workers N` runs several processes.

Each uvicorn worker process counts in memory by default, so a scrape (answered by whichever
process accepts it) would show one process's share. With several workers, `ftm api` gives them a
fresh directory in `PROMETHEUS_MULTIPROC_DIR` before they start: prometheus_client then keeps every
process's counters and histograms in files there, and `/metrics` sums the files of all of them.
The directory is a new temporary one per `ftm api` (local to its machine or container, never the
shared data volume, where two replicas would mix their processes' files), removed when it exits,
so counts restart with the service as they would with one process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_shared_by_workers() -> Iterator[Path]:
    """While the worker processes run (they inherit the environment): a new directory for their
    metric files, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="ftm-metrics-"))
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition: this process's `registry`, or every worker's sum in multiprocess mode."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)
