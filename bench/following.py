"""What following active jobs costs: database statements, broker messages and provider calls per
job per minute, at 10, 100 and 1,000 jobs running at the local provider (a training step a second,
so every refresh finds new events, as a running job at OpenAI does).

For one real minute, a sweep every FTM_JOB_REFRESH_INTERVAL_S (10 s) claims the due jobs as
beat's task does (batches of 500 while a batch comes back full), and WORKERS threads run the
queued refreshes as a worker's pool runs them (`refresh.refresh`, the production polling policy). The jobs are followed once the
local provider has started them all. Statements are counted at the SQL engine, provider calls at
the local provider, broker messages as the outbox rows the relay (`outbox.relay`, every
FTM_OUTBOX_RELAY_INTERVAL_S as beat runs it) publishes, one each. At 1,000 jobs one process on this
machine may not keep up: then the figures are what it managed, "behind" says how many refreshes
were still queued at the end, and "failed" how many raised a database error (SQLite's "database is
locked": a worker's task would fail, and the job be swept again)."""

from __future__ import annotations

import io
import json
import os
import queue
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from bench.servers import service_process
from devtools.devstack import free_port
from service.auth import service as auth
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.ids import new_id
from service.jobs import refresh
from service.jobs.access import ProviderAccess
from service.jobs.models import JobRow
from service.migrate import upgrade
from service.outbox import service as outbox
from service.providers.errors import ProviderRejected, ProviderUnavailable
from service.runtime import Runtime
from service.tasks import TaskName

SIZES = (10, 100, 1000)
MINUTE_S = 60
WORKERS = 4  # refreshes run at once, as a worker process's pool runs them


def _dataset() -> bytes:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {n}?"},
                {"role": "assistant", "content": f"Answer {n}."},
            ]
        }
        for n in range(20)
    ]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _provider_jobs(emulator: str, count: int) -> list[str]:
    """`count` jobs at the local provider that run (a step a second) for the whole minute."""
    client = openai.OpenAI(api_key="sk-local", base_url=emulator, max_retries=0)
    file_id = client.files.create(file=("train.jsonl", io.BytesIO(_dataset())), purpose="fine-tune").id
    method: Any = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 50, "batch_size": 1}}}
    return [
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini-2024-07-18", training_file=file_id, method=method
        ).id
        for _ in range(count)
    ]


def _wait_until_running(emulator: str, provider_jobs: list[str]) -> float:
    """Wait (at most 10 minutes) until the local provider has validated and started every job; the
    seconds it took (validating trains each job's run, some 40 ms a job here)."""
    client = openai.OpenAI(api_key="sk-local", base_url=emulator, max_retries=0)
    wanted, started = set(provider_jobs), time.monotonic()
    while time.monotonic() < started + 600:
        running = {job.id for job in client.fine_tuning.jobs.list(limit=1000) if job.status == "running"}
        if wanted <= running:
            break
        time.sleep(1)
    return time.monotonic() - started


def _follow_for_a_minute(runtime: Runtime, provider_jobs: list[str], stats: httpx.Client) -> dict[str, float]:
    with session_scope(runtime.sessions) as session:
        tenant = auth.get_or_create_tenant(session, "bench")
        session.add_all(
            JobRow(
                id=new_id("ftjob-"),
                tenant_id=tenant.id,
                provider="local",
                provider_job_id=remote,
                model="gpt-4o-mini-2024-07-18",
                training_file="file-bench",
                hyperparameters={},
                seed=0,
                status="running",
                result_files=[],
                next_refresh_at=utcnow(),
            )
            for remote in provider_jobs
        )
    statements = 0
    lock = threading.Lock()

    def count(*_: Any) -> None:
        nonlocal statements
        with lock:
            statements += 1

    engine = runtime.sessions.kw["bind"]
    access = ProviderAccess.from_runtime(runtime)
    interval = runtime.settings.job_refresh_interval_s
    stats.delete("/_emulator/stats")
    event.listen(engine, "before_cursor_execute", count)
    messages = behind = failed = 0
    started = time.monotonic()
    end = started + MINUTE_S
    work: queue.Queue[str] = queue.Queue()

    def worker() -> None:  # one of a worker's pool: refreshes as they are relayed, until the minute ends
        nonlocal behind, failed
        while time.monotonic() < end:
            try:
                job_id = work.get(timeout=0.05)
            except queue.Empty:
                continue
            if time.monotonic() >= end:
                with lock:
                    behind += 1
                return
            try:
                refresh.refresh(runtime.sessions, job_id, access)
            except (ProviderUnavailable, ProviderRejected):
                pass  # postponed by the refresh itself, as a worker's retry would find it
            except SQLAlchemyError:  # e.g. SQLite's "database is locked": the task fails, a sweep retries
                with lock:
                    failed += 1

    pool = [threading.Thread(target=worker, name=f"refresh-{n}") for n in range(WORKERS)]
    for thread in pool:
        thread.start()

    def publish(task_name: str, kwargs: dict[str, Any], _headers: dict[str, str]) -> None:
        nonlocal messages
        messages += 1
        if task_name == TaskName.JOBS_REFRESH.value:
            work.put(kwargs["job_id"])

    next_sweep = next_relay = started
    while time.monotonic() < end:
        if time.monotonic() >= next_sweep:
            refresh.sweep_all(runtime.sessions, ahead=timedelta(seconds=interval / 2))  # as beat's task
            next_sweep += interval
        if time.monotonic() >= next_relay:  # as beat's outbox-relay task does
            while True:
                with session_scope(runtime.sessions) as session:
                    if outbox.relay(session, publish) < outbox.RELAY_BATCH:
                        break
            next_relay += runtime.settings.outbox_relay_interval_s
        time.sleep(max(0.0, min(next_sweep, next_relay) - time.monotonic()))
    for thread in pool:
        thread.join()
    behind += work.qsize()
    event.remove(engine, "before_cursor_execute", count)
    with session_scope(runtime.sessions) as session:
        behind += outbox.pending_count(session)
    calls = sum(stats.get("/_emulator/stats").json().values())
    jobs = len(provider_jobs)
    return {
        "statements": statements / jobs,
        "messages": messages / jobs,
        "calls": calls / jobs,
        "behind": behind,
        "failed": failed,
    }


def run() -> None:
    print("following running jobs for a minute (a refresh every 10 s while a job runs):")
    print(
        "| active jobs | SQL statements / job / min | broker messages / job / min | provider calls / job / min "
        "| behind | failed |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        emulator = f"http://127.0.0.1:{port}/v1"
        env = {
            **os.environ,
            "FTM_EMULATOR_DATA_DIR": str(Path(tmp) / "emulator"),
            "FTM_EMULATOR_SECONDS_PER_STEP": "1",
        }
        with service_process(
            ["emulator", "--port", str(port)], env, f"{emulator.removesuffix('/v1')}/v1/models"
        ):
            stats = httpx.Client(
                base_url=emulator.removesuffix("/v1"), headers={"Authorization": "Bearer sk-local"}
            )
            for size in SIZES:
                data = Path(tmp) / f"ftm-{size}"
                data.mkdir()
                settings = Settings(
                    _env_file=None,
                    data_dir=data,
                    local_provider_base_url=emulator,
                    redis_url="redis://127.0.0.1:1/0",
                )
                upgrade(settings.database_url)
                runtime = Runtime(settings)
                remote = _provider_jobs(emulator, size)
                _wait_until_running(emulator, remote)  # validating and queued take a step each
                figures = _follow_for_a_minute(runtime, remote, stats)
                print(
                    f"| {size:,} | {figures['statements']:.1f} | {figures['messages']:.1f} | "
                    f"{figures['calls']:.1f} | {figures['behind']:.0f} | {figures['failed']:.0f} |",
                    flush=True,
                )
                runtime.close()
