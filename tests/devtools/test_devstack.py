from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from devtools.devstack import (
    DevStack,
    StackInfo,
    banner,
    dev_api_key,
    dev_credentials_key,
    redis_answers,
    start_embedded_redis,
)
from service.config import Settings
from service.providers.credentials import CredentialsCipher
from service.redis_client import connect


def test_without_redis_server_on_path_the_embedded_redis_is_fakeredis_and_runs_lua(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)

    embedded = start_embedded_redis(tmp_path)
    try:
        client = connect(embedded.url)
        lock = client.lock("probe", timeout=5)  # kombu and our locks use Lua scripts
        acquired = lock.acquire(blocking=False)
        lock.release()
        client.close()
    finally:
        embedded.stop()

    assert (embedded.kind, acquired) == ("fakeredis", True)
    assert not redis_answers(embedded.url)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH")
def test_with_redis_server_on_path_the_embedded_redis_is_a_real_one_that_stops(tmp_path: Path) -> None:
    embedded = start_embedded_redis(tmp_path)
    answered = redis_answers(embedded.url)

    embedded.stop()

    assert (embedded.kind, answered, redis_answers(embedded.url)) == ("redis-server", True, False)


def test_the_dev_key_is_made_once_and_kept(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)

    first, second = dev_api_key(settings).value, dev_api_key(settings).value

    assert first == second
    assert first.startswith("ftm_")
    assert (settings.data_dir / "dev-api-key").stat().st_mode & 0o077 == 0


def test_the_dev_credentials_key_is_made_once_kept_private_and_works_with_the_service(
    settings: Settings,
) -> None:
    settings.data_dir.mkdir(parents=True)

    first, second = dev_credentials_key(settings), dev_credentials_key(settings)

    assert first == second
    assert (settings.data_dir / "dev-credentials-key").stat().st_mode & 0o077 == 0
    configured = Settings(_env_file=None, credentials_key=SecretStr(first)).credentials_key
    assert configured is not None
    cipher = CredentialsCipher.from_setting(configured.get_secret_value())
    assert cipher.decrypt(cipher.encrypt("sk-tenant")) == "sk-tenant"


def _printed(settings: Settings) -> str:
    info = StackInfo(url="http://127.0.0.1:8000/v1", key=dev_api_key(settings), redis="redis://x (fakeredis)")
    return banner(info, settings.data_dir)


def test_a_key_from_ftm_bootstrap_api_key_is_never_printed(settings: Settings) -> None:
    given = "ftm_given_by_the_operator_0123456789"
    settings.bootstrap_api_key = SecretStr(given)

    printed = _printed(settings)

    assert given not in printed
    assert "API key      : (FTM_BOOTSTRAP_API_KEY)" in printed


def test_a_generated_dev_key_is_printed_on_its_api_key_line(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)

    printed = _printed(settings)

    shown = re.search(r"API key\s*:\s*(\S+)", printed)  # as tests/e2e/conftest.py reads it
    assert shown is not None
    assert shown.group(1) == (settings.data_dir / "dev-api-key").read_text().strip()


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(30)"]


def test_a_worker_that_dies_is_started_again_and_the_api_dying_ends_the_stack(settings: Settings) -> None:
    stack = DevStack(settings)
    stack._commands = {"worker": _sleeper(), "api": _sleeper()}
    stack._env = dict(os.environ)
    stack.processes = {name: subprocess.Popen(command) for name, command in stack._commands.items()}
    try:
        first = stack.processes["worker"]
        first.kill()
        first.wait()

        stack.raise_if_exited()

        assert stack.processes["worker"] is not first
        assert stack.processes["worker"].poll() is None
        stack.processes["api"].kill()
        stack.processes["api"].wait()
        with pytest.raises(RuntimeError, match="api exited"):
            stack.raise_if_exited()
    finally:
        stack.stop()
    assert all(process.poll() is not None for process in stack.processes.values())


def test_a_worker_that_keeps_dying_ends_the_stack(settings: Settings) -> None:
    stack = DevStack(settings)
    stack._commands = {"worker": [sys.executable, "-c", "raise SystemExit(3)"]}
    stack._env = dict(os.environ)
    stack.processes = {"worker": subprocess.Popen(stack._commands["worker"])}

    def restart() -> None:
        stack.processes["worker"].wait()
        stack.raise_if_exited()

    for _ in range(5):  # MAX_RESTARTS within the window
        restart()
    with pytest.raises(RuntimeError, match="worker exited with code 3"):
        restart()
    stack.stop()
