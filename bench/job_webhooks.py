"""From a job's end at the provider to our webhook: p50/p99 seconds from the moment a job succeeds
at the local provider to the first delivery attempt of ftm's `fine_tuning.job.succeeded` webhook
at a receiver, with the provider's webhooks (the local provider posts OpenAI's
`fine_tuning.job.*` events to `POST /providers/local/webhooks`, as `make run` wires it) and without
them (polling alone), at the production polling defaults (a running job every
FTM_JOB_REFRESH_INTERVAL_S = 10 s, a queued one every 60 s).

Real processes: the local provider, the API, a Celery worker and beat on a private Redis and a
SQLite store, and a receiver (a thread of this process that notes when each webhook arrives). The
jobs are created through the API with the openai SDK a fraction of a second apart, so their ends
fall at every point of the polling period; each runs long enough (160 s) to be seen running
first, as a real job of minutes or hours is (after its submit a job not yet running is next looked
at 60 s later, doubled when nothing changed: 120 s). A job's end is read from the local provider's
own record of its timeline (its `finished_at` is in whole seconds, too coarse for the webhook
path). About eight minutes."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
from pydantic import SecretStr

from devtools.devstack import free_port, start_embedded_redis
from service.auth.keys import generate_key
from service.bootstrap import ensure_bootstrap_key
from service.config import Settings
from service.db import make_engine, make_session_factory
from service.migrate import upgrade
from service.webhooks.signing import generate_secret

JOBS = 40
CREATE_EVERY_S = 0.5  # 40 ends over 20 s: two polling periods
EXAMPLES, EPOCHS, SECONDS_PER_STEP = 20, 8, 1.0  # 160 steps: running past the first polls
EVENT = "fine_tuning.job.succeeded"
WAIT_AFTER_LAST_END_S = 180


def _dataset() -> bytes:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {n}?"},
                {"role": "assistant", "content": f"Answer {n}."},
            ]
        }
        for n in range(EXAMPLES)
    ]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


class _Receiver(ThreadingHTTPServer):
    """Answers every POST 200 and notes when the first `fine_tuning.job.succeeded` about each job came."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.lock = threading.Lock()
        self.arrivals: dict[str, float] = {}


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        event = json.loads(body)
        if event.get("type") == EVENT:
            with self.server.lock:
                self.server.arrivals.setdefault(event["data"]["id"], arrived)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _process(name: str, command: list[str], env: dict[str, str], logs: Path) -> Iterator[None]:
    with (logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


@dataclass(frozen=True)
class _Stack:
    api: str
    key: str
    emulator_db: Path


@contextmanager
def _stack(root: Path, *, provider_webhooks: bool) -> Iterator[_Stack]:
    """The local provider, API, worker and beat, as `make run` starts them, on a private Redis."""
    root.mkdir()
    with ExitStack() as stack:
        redis = start_embedded_redis(root)
        stack.callback(redis.stop)
        key = generate_key()
        settings = Settings(
            _env_file=None, data_dir=root / "ftm", redis_url=redis.url, bootstrap_api_key=SecretStr(key)
        )
        settings.data_dir.mkdir()
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        ensure_bootstrap_key(settings, make_session_factory(engine))
        engine.dispose()
        api_port, emulator_port = free_port(), free_port()
        emulator = f"http://127.0.0.1:{emulator_port}/v1"
        env = {name: value for name, value in os.environ.items() if not name.startswith("FTM_")}
        env |= {
            "FTM_REDIS_URL": redis.url,
            "FTM_DATABASE_URL": settings.database_url,
            "FTM_DATA_DIR": str(settings.data_dir),
            "FTM_BOOTSTRAP_API_KEY": key,
            "FTM_LOG_LEVEL": "WARNING",
            "FTM_WEBHOOK_ALLOWED_DESTINATIONS": "127.0.0.1",
            "FTM_LOCAL_PROVIDER_BASE_URL": emulator,
            "FTM_LOCAL_PROVIDER_API_KEY": "sk-local",
            "FTM_EMULATOR_API_KEY": "sk-local",
            "FTM_EMULATOR_DATA_DIR": str(root / "emulator"),
            "FTM_EMULATOR_SECONDS_PER_STEP": str(SECONDS_PER_STEP),
        }
        if provider_webhooks:
            secret = generate_secret()
            env |= {
                "FTM_LOCAL_PROVIDER_WEBHOOK_SECRET": secret,
                "FTM_EMULATOR_WEBHOOK_SECRET": secret,
                "FTM_EMULATOR_WEBHOOK_URL": f"http://127.0.0.1:{api_port}/providers/local/webhooks",
            }
        python = [sys.executable, "-m"]
        celery = [*python, "celery", "-A", "workers.celery_app"]
        commands = {
            "emulator": [
                *python,
                "service.cli",
                "emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(emulator_port),
            ],
            "api": [*python, "service.cli", "api", "--host", "127.0.0.1", "--port", str(api_port)],
            "worker": [
                *celery,
                "worker",
                "--concurrency",
                "2",
                "--queues",
                "maintenance,files,jobs,webhooks,evals",
                "--loglevel",
                "WARNING",
                "--hostname",
                f"bench-{api_port}@%h",
            ],
            "beat": [
                *celery,
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(root / "celerybeat-schedule"),
            ],
        }
        for name, command in commands.items():
            stack.enter_context(_process(name, command, env, root))
        _wait_ready(f"{emulator}/models", "the local provider")
        _wait_ready(f"http://127.0.0.1:{api_port}/readyz", "the API")
        yield _Stack(f"http://127.0.0.1:{api_port}/v1", key, root / "emulator" / "emulator.sqlite3")


def _ends_at_provider(emulator_db: Path) -> dict[str, float]:
    """Our job id -> when its provider job succeeded, by the local provider's timeline (read-only)."""
    ends: dict[str, float] = {}
    with sqlite3.connect(f"file:{emulator_db}?mode=ro", uri=True) as conn:
        for (doc,) in conn.execute("SELECT doc FROM jobs WHERE status = 'succeeded'"):
            job = json.loads(doc)
            ours = (job.get("metadata") or {}).get("ftm_job_id")
            if ours:
                done = job["steps_done"] - job["anchor_steps"]
                ends[ours] = job["anchor_time"] + done * job["seconds_per_step"]
    return ends


def _measure(root: Path, *, provider_webhooks: bool) -> list[float]:
    """Seconds from each job's end at the provider to its webhook at the receiver."""
    with _receiver() as receiver, _stack(root, provider_webhooks=provider_webhooks) as stack:
        client = openai.OpenAI(base_url=stack.api, api_key=stack.key, max_retries=2)
        httpx.post(
            f"{stack.api}/webhook_endpoints",
            headers={"Authorization": f"Bearer {stack.key}"},
            json={
                "name": "bench",
                "url": f"http://127.0.0.1:{receiver.server_address[1]}/hooks",
                "event_types": [EVENT],
            },
        ).raise_for_status()
        training = client.files.create(file=("train.jsonl", io.BytesIO(_dataset())), purpose="fine-tune")
        method: Any = {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": EPOCHS, "batch_size": 1}},
        }
        jobs: list[str] = []
        for _ in range(JOBS):
            job = client.fine_tuning.jobs.create(
                model="gpt-4o-mini-2024-07-18", training_file=training.id, method=method
            )
            jobs.append(job.id)
            time.sleep(CREATE_EVERY_S)
        deadline = (
            time.time() + JOBS * CREATE_EVERY_S + EPOCHS * EXAMPLES * SECONDS_PER_STEP + WAIT_AFTER_LAST_END_S
        )
        while time.time() < deadline:
            with receiver.lock:
                if len(receiver.arrivals) >= len(jobs):
                    break
            time.sleep(1)
        ends = _ends_at_provider(stack.emulator_db)
        with receiver.lock:
            arrivals = dict(receiver.arrivals)
    missing = [job for job in jobs if job not in arrivals or job not in ends]
    if missing:
        print(f"  ({len(missing)} of {len(jobs)} jobs had no webhook in time; left out)", flush=True)
    return [arrivals[job] - ends[job] for job in jobs if job in arrivals and job in ends]


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run() -> None:
    print(
        f"job end at the provider -> our {EVENT} webhook at a receiver ({JOBS} jobs, "
        "polling at the production defaults):"
    )
    print("| provider webhooks | jobs | p50 s | p99 s | max s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for provider_webhooks in (False, True):
            label = "on" if provider_webhooks else "off (polling alone)"
            latencies = _measure(Path(tmp) / label.split()[0], provider_webhooks=provider_webhooks)
            if not latencies:
                print(f"| {label} | 0 | - | - | - |", flush=True)
                continue
            print(
                f"| {label} | {len(latencies)} | {_percentile(latencies, 50):.2f} | "
                f"{_percentile(latencies, 99):.2f} | {max(latencies):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    run()
