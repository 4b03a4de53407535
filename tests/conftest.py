"""Shared fixtures: settings, a migrated store, Redis, the app and its clients.

SQLite and fakeredis by default; a real PostgreSQL and Redis when FTM_TEST_DATABASE_URL and
FTM_TEST_REDIS_URL are set (CI). The schema is built once per run by the Alembic migrations, so
every run also proves the migrations; each test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import openai
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, text

from service.app import create_app
from service.auth import service as auth
from service.auth.keys import ALL_SCOPES, DEFAULT_SCOPES
from service.config import Settings
from service.db import make_engine, session_scope
from service.migrate import upgrade
from service.runtime import Runtime
from service.tables import metadata
from tests.s3 import s3_server


def _drop_everything(url: str) -> None:
    engine = make_engine(url)
    existing = MetaData()
    existing.reflect(bind=engine)
    existing.drop_all(bind=engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("FTM_TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )
    _drop_everything(url)
    upgrade(url)
    return url


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    url = os.environ.get("FTM_TEST_REDIS_URL")
    client: redis.Redis = redis.Redis.from_url(url) if url else fakeredis.FakeRedis()
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible server (moto's, in a subprocess), started once for the tests that ask."""
    with s3_server(tmp_path_factory.mktemp("s3") / "server.log") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=os.environ.get("FTM_TEST_REDIS_URL", "redis://127.0.0.1:1/0"),
        api_key_cache_ttl_s=0,
    )


@pytest.fixture
def runtime(settings: Settings, redis_client: redis.Redis) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    runtime.__dict__["redis"] = redis_client
    with runtime.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def make_key(runtime: Runtime, tenant: str = "acme", scopes: frozenset[str] | None = None) -> str:
    """A key of `tenant` (created if need be); default scopes: every feature scope."""
    with session_scope(runtime.sessions) as session:
        _, key = auth.create_key(
            session, auth.get_or_create_tenant(session, tenant), scopes=scopes or DEFAULT_SCOPES
        )
    return key


@pytest.fixture
def admin_key(runtime: Runtime) -> str:
    """A key of tenant `default` with every scope, `platform` included, like the bootstrap key."""
    return make_key(runtime, "default", ALL_SCOPES)


@pytest.fixture
def tenant_key(runtime: Runtime) -> str:
    return make_key(runtime, "acme")


def sdk_for(client: TestClient, key: str, *, strict: bool = True) -> openai.OpenAI:
    """The official SDK driving the app in-process, strict about the shapes it gets back."""
    return openai.OpenAI(
        base_url="http://testserver/v1",
        api_key=key,
        http_client=client,
        max_retries=0,
        _strict_response_validation=strict,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
