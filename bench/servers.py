"""A service command (`python -m service.cli …`) run as a process for the length of a benchmark."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def service_process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    """Run `ftm ARGS…` until the block ends, once `ready_url` answers (at most a minute)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", *args], env=env, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(ready_url, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{args[0]} did not start")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(15)
