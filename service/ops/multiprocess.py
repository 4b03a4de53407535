"""Prometheus metrics that are right when `ftm api --workers N` runs several processes.

Each uvicorn worker process counts in memory by default, so a scrape (answered by whichever
process accepts it) would show one process's share. With several workers, `ftm api` gives them a
fresh directory in `PROMETHEUS_MULTIPROC_DIR` before they start: prometheus_client then keeps every
process's counters and histograms in files there, and `/metrics` sums the files of all of them.
The directory is emptied at each start, so counts restart with the service (as they would with
one process), never doubling a dead process's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_for_workers(directory: Path) -> None:
    """Before the worker processes start (they inherit the environment): an empty directory for
    their metric files."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition: this process's `registry`, or every worker's sum in multiprocess mode."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)
