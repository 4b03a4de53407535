"""Redis goes away while work is being accepted: the API keeps accepting it (the outbox holds
it), and once Redis is back the worker and beat reconnect and the job runs to its end."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.devstack import free_port, redis_answers
from tests.e2e.conftest import Stack, run_stack
from tests.e2e.test_fine_tuning_flow import BASE_MODEL, sdk, wait_for
from tests.factories import jonny_dataset

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to stop and start"),
]


class RedisServer:
    """A redis-server of the test's own, on a fixed port, that can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_answers(self.url) or None, "redis-server to answer", 10)

    def stop(self) -> None:
        assert self.process is not None
        self.process.kill()  # a crash, not a clean shutdown; nothing is persisted
        self.process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


@pytest.fixture
def outage_stack(tmp_path: Path, redis_server: RedisServer, database_url: str) -> Iterator[Stack]:
    (tmp_path / "stack").mkdir()
    with run_stack(tmp_path / "stack", redis_url=redis_server.url, database_url=database_url) as running:
        yield running


def test_work_accepted_while_redis_is_down_runs_once_redis_is_back(
    outage_stack: Stack, redis_server: RedisServer
) -> None:
    client = sdk(outage_stack, outage_stack.admin_key)
    redis_server.stop()

    uploaded = client.files.create(file=("jonny.jsonl", io.BytesIO(jonny_dataset())), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE_MODEL, training_file=uploaded.id)
    while_down = (client.files.retrieve(uploaded.id).status, client.fine_tuning.jobs.retrieve(job.id).status)
    redis_server.start()
    done = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed") and j or None
        ),
        "the job to finish",
    )

    assert while_down == ("uploaded", "validating_files")
    assert done.status == "succeeded"
    assert client.files.retrieve(uploaded.id).status == "processed"
