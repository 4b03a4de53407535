"""A key's limit holds across two real API processes that share one Redis (needs a real Redis:
FTM_TEST_REDIS_URL, as in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from devtools.devstack import free_port
from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.proxy.fakes import FakeUpstream
from tests.servers import serve

REDIS_URL = os.environ.get("FTM_TEST_REDIS_URL")
BODY = {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "hi"}]}

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs a real Redis shared by processes")


@contextmanager
def api_process(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "api", "--workers", "1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(15)


def test_a_keys_limit_holds_across_two_api_processes(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    key = make_key(runtime, "acme")
    upstream = FakeUpstream()
    with ExitStack() as stack:
        upstream_url = stack.enter_context(serve(upstream.app))
        env = {
            **os.environ,
            "FTM_DATA_DIR": str(tmp_path / "data"),
            "FTM_DATABASE_URL": settings.database_url,
            "FTM_REDIS_URL": str(REDIS_URL),
            "FTM_LOCAL_PROVIDER_BASE_URL": f"{upstream_url}/v1",
            "FTM_KEY_REQUESTS_PER_MINUTE": "4",
            "FTM_LOG_LEVEL": "WARNING",
        }
        urls = [stack.enter_context(api_process(env, free_port(), tmp_path / f"api{n}.log")) for n in (1, 2)]

        statuses = [
            httpx.post(
                f"{urls[n % 2]}/v1/chat/completions", json=BODY, headers=bearer(key), timeout=30
            ).status_code
            for n in range(6)
        ]

    assert statuses == [200, 200, 200, 200, 429, 429]
    assert len(upstream.calls("/v1/chat/completions")) == 4
