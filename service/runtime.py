"""What a process needs to do work: settings, the SQL engine and sessions, Redis, the blob store.

The API keeps one on `app.state.runtime`; each worker process builds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.blobs.backends import create_blob_store
from service.blobs.store import BlobStore
from service.clock import utcnow
from service.config import Settings
from service.db import make_engine, make_session_factory
from service.providers.registry import ProviderRegistry
from service.redis_client import connect
from service.tables import metadata as _schema  # noqa: F401  (every mapper, so relationships resolve)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)
    # What time it is for deadlines the API enforces itself (an upload's hour); tests set their own.
    clock: Callable[[], datetime] = field(default=utcnow)

    def __post_init__(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.settings.database_url)
        self.sessions = make_session_factory(self.engine)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.redis_url)

    @cached_property
    def blobs(self) -> BlobStore:
        return create_blob_store(self.settings)

    @cached_property
    def providers(self) -> ProviderRegistry:
        return ProviderRegistry(self.settings)

    def close(self) -> None:
        self.engine.dispose()
        if "providers" in self.__dict__:
            self.providers.close()
        if "blobs" in self.__dict__:
            self.blobs.close()
        if "redis" in self.__dict__:
            self.redis.close()
