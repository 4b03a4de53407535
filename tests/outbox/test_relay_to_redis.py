"""The relay against a real Redis protocol server (CI's Redis, else the dev stack's embedded one)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from devtools.devstack import start_embedded_redis
from service.db import session_scope
from service.outbox import service as outbox
from service.outbox.models import OutboxRow
from service.queueing import make_celery, publisher
from service.runtime import Runtime
from service.tasks import TaskName


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    url = os.environ.get("FTM_TEST_REDIS_URL")
    if url:
        base, _, db = url.rpartition("/")
        url = f"{base}/{(int(db or 0) + 2) % 16}"
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    embedded = start_embedded_redis(tmp_path)
    yield embedded.url
    embedded.stop()


def test_relayed_work_lands_on_its_queue_in_redis(runtime: Runtime, broker_url: str) -> None:
    with session_scope(runtime.sessions) as session:
        outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id="file-1")
    app = make_celery(runtime.settings.model_copy(update={"redis_url": broker_url}))

    with session_scope(runtime.sessions) as session:
        sent = outbox.relay(session, publisher(app))

    queued = redis.Redis.from_url(broker_url).lrange("files", 0, -1)
    message = json.loads(queued[0])
    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert sent == 1
    assert (message["headers"]["task"], kwargs) == ("files.validate", {"file_id": "file-1"})


def test_with_redis_down_the_work_stays_in_the_outbox_for_the_next_relay(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        outbox.enqueue(session, TaskName.FILES_VALIDATE, file_id="file-1")
    app = make_celery(runtime.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))

    with session_scope(runtime.sessions) as session:
        sent = outbox.relay(session, publisher(app))

    with session_scope(runtime.sessions) as session:
        row = session.scalars(select(OutboxRow)).one()
    assert sent == 0
    assert row.sent_at is None
    assert row.last_error is not None
