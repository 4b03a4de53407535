"""The worker process's runtime (settings, database, Redis), built on first use after the fork."""

from __future__ import annotations

from functools import lru_cache

from celery.signals import worker_process_shutdown

from service.config import get_settings
from service.runtime import Runtime


@lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    return Runtime(get_settings())


@worker_process_shutdown.connect
def _close_runtime(**_: object) -> None:
    if get_runtime.cache_info().currsize:
        get_runtime().close()
        get_runtime.cache_clear()
