"""The running stack, started the way `make run` starts it (`ftm dev`), on free ports and a
temporary data directory; a local webhook receiver."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest

from devtools.devstack import free_port

STARTUP_TIMEOUT_S = 90


@dataclass
class Stack:
    base_url: str
    admin_key: str
    emulator_url: str
    log: Path
    pid: int


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)


def _e2e_redis_url() -> str:
    """A database of its own on the CI Redis (the unit tests flush theirs), else unreachable so
    that the stack starts its embedded Redis."""
    url = os.environ.get("FTM_TEST_REDIS_URL")
    if not url:
        return "redis://127.0.0.1:1/0"
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) + 1) % 16}"


@contextmanager
def run_stack(
    data_dir: Path, *, redis_url: str, database_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """`ftm dev` on free ports, fast job refreshes, its log in `data_dir/stack.log`."""
    api_port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "FTM_DATA_DIR": str(data_dir),
        "FTM_DATABASE_URL": database_url if "postgresql" in database_url else f"sqlite:///{data_dir}/ftm.db",
        "FTM_REDIS_URL": redis_url,
        "FTM_PORT": str(api_port),
        "FTM_LOCAL_PROVIDER_PORT": str(emulator_port),
        "FTM_JOB_REFRESH_INTERVAL_S": "1",
        "FTM_OUTBOX_RELAY_INTERVAL_S": "0.5",
        "FTM_EMULATOR_SECONDS_PER_STEP": "0.02",
        "FTM_JOB_SUBMIT_LEASE_S": "5",
        "FTM_JOB_SUBMIT_BACKOFF_S": "0.5",
        "FTM_JOB_SUBMIT_BACKOFF_MAX_S": "4",
        "FTM_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    env.pop("FTM_BOOTSTRAP_API_KEY", None)
    log_path = data_dir / "stack.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "dev"], env=env, stdout=subprocess.PIPE, stderr=log_file
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line.decode())

    threading.Thread(target=pump, daemon=True).start()
    key = None
    try:
        while key is None:
            line = lines.get(timeout=STARTUP_TIMEOUT_S)
            match = re.search(r"API key\s*:\s*(\S+)", line)
            key = match.group(1) if match else None
        yield Stack(
            f"http://127.0.0.1:{api_port}/v1",
            key,
            f"http://127.0.0.1:{emulator_port}/v1",
            log_path,
            process.pid,
        )
    except queue.Empty:
        pytest.fail(f"the stack did not start; its log:\n{log_path.read_text()[-5000:]}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stdout.close()
        log_file.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    with run_stack(
        tmp_path_factory.mktemp("stack"), redis_url=_e2e_redis_url(), database_url=database_url
    ) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received: queue.Queue[Received] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            received.put(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks", received)
    server.shutdown()
    server.server_close()


def provider(stack: Stack) -> openai.OpenAI:
    """The stack's local provider, as the service sees it (its own key)."""
    return openai.OpenAI(base_url=stack.emulator_url, api_key="sk-local", max_retries=2)


def provider_jobs_of(stack: Stack, job_id: str) -> int:
    """How many fine-tuning jobs the provider holds for our job `job_id`."""
    with provider(stack) as client:
        return len(client.fine_tuning.jobs.list(metadata={"ftm_job_id": job_id}, limit=100).data)


def provider_copies_of(stack: Stack, file_ids: list[str]) -> dict[str, int]:
    """How many copies of each of our files the provider holds (their names start with our id)."""
    with provider(stack) as client:
        names = [file.filename for file in client.files.list(purpose="fine-tune")]
    return {file_id: sum(name.startswith(f"{file_id}-") for name in names) for file_id in file_ids}


def pretty(value: object) -> str:
    return json.dumps(value, indent=2, default=str)
