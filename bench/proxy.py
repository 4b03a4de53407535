"""What the proxy adds to an inference call: the same chat completion sent straight to the local
provider and through ftm (auth, route lookup, relay), sequentially, in one run.

Both servers run as their own processes (uvicorn), as in `make run`."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devtools.devstack import free_port
from service.auth import service as auth
from service.auth.keys import ALL_SCOPES
from service.config import Settings
from service.db import make_engine, make_session_factory, session_scope
from service.migrate import upgrade

REQUESTS = 300
BODY = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "Say hello."}]}


@contextmanager
def _server(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
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
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not start")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(15)


def _latencies_ms(call: Callable[[], object]) -> list[float]:
    for _ in range(20):
        call()
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _describe(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
    return f"{name:<28}: p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = Settings(_env_file=None, data_dir=data)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        with session_scope(make_session_factory(engine)) as session:
            _, key = auth.create_key(session, auth.get_or_create_tenant(session, "bench"), scopes=ALL_SCOPES)
        engine.dispose()
        emulator_port, api_port = free_port(), free_port()
        env = {
            **os.environ,
            "FTM_DATA_DIR": str(data),
            "FTM_EMULATOR_DATA_DIR": str(data / "emulator"),
            "FTM_LOCAL_PROVIDER_BASE_URL": f"http://127.0.0.1:{emulator_port}/v1",
            "FTM_REDIS_URL": "redis://127.0.0.1:1/0",
            "FTM_LOG_LEVEL": "WARNING",
        }
        emulator = f"http://127.0.0.1:{emulator_port}/v1"
        api = f"http://127.0.0.1:{api_port}/v1"
        with (
            _server(["emulator", "--port", str(emulator_port)], env, f"{emulator}/models"),
            _server(["api", "--port", str(api_port)], env, f"http://127.0.0.1:{api_port}/healthz"),
            httpx.Client(timeout=30) as http,
        ):
            direct_headers = {"Authorization": "Bearer sk-local"}
            proxy_headers = {"Authorization": f"Bearer {key}"}

            def direct() -> None:
                http.post(
                    f"{emulator}/chat/completions", json=BODY, headers=direct_headers
                ).raise_for_status()

            def proxied() -> None:
                http.post(f"{api}/chat/completions", json=BODY, headers=proxy_headers).raise_for_status()

            straight = _latencies_ms(direct)
            through = _latencies_ms(proxied)
        added = statistics.median(through) - statistics.median(straight)
        print(_describe("local provider, direct", straight))
        print(_describe("through the ftm proxy", through))
        print(f"{'added by the proxy':<28}: {added:6.2f} ms at p50 ({REQUESTS} sequential requests each)")
