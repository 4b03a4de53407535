"""A 1 GiB file through `/v1/uploads` with the SDK's `upload_file_chunked`, against a real API
process (uvicorn on a loopback port), and a 256 MiB file through `POST /v1/files` (limit 512 MB):
the stored bodies are whole and right, and the server's peak memory stays far below their size,
so no body is ever held whole in memory.

The file is generated on the fly in a temporary directory. The server's peak resident set
(`VmHWM` in /proc) is recorded as a property of the test (`-rP` or the JUnit report shows it)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from devtools.devstack import free_port
from service.blobs.directory import DirectoryBlobStore
from service.migrate import upgrade

pytestmark = pytest.mark.large

GIB = 1024**3
MIB = 1024**2
# The server imports its whole stack (~100 MiB); a part is 64 MiB. Far below 1 GiB, with room.
PEAK_RSS_LIMIT = 320 * MIB
KEY = "ftm_large_upload_test_key_0123456789abcdef"
STARTUP_TIMEOUT_S = 60


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    blobs: DirectoryBlobStore

    def peak_rss(self) -> int:
        """The process's peak resident set so far, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc status")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("large-upload")
    database_url = f"sqlite:///{data_dir / 'ftm.db'}"
    upgrade(database_url)
    port = free_port()
    env = {
        **os.environ,
        "FTM_DATA_DIR": str(data_dir),
        "FTM_DATABASE_URL": database_url,
        "FTM_REDIS_URL": "redis://127.0.0.1:1/0",  # nothing here needs Redis
        "FTM_BOOTSTRAP_API_KEY": KEY,
        "FTM_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "service.app:serve", "--port", str(port)]
    with (data_dir / "api.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, process)
        yield Server(base_url, process, DirectoryBlobStore(data_dir / "blobs"))
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with code {process.returncode}")
        try:
            httpx.get(f"{base_url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the API did not answer within {STARTUP_TIMEOUT_S} s")


@pytest.fixture
def sdk(server: Server) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=KEY,
        max_retries=0,
        timeout=300,
        _strict_response_validation=True,
    )
    yield client
    client.close()


def _write_jsonl(path: Path, size: int) -> str:
    """A chat-format JSONL file of exactly `size` bytes, written in 1 MiB blocks; its MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    line = json.dumps(
        {
            "messages": [
                {"role": "user", "content": "When was Jonny Whizbang born?"},
                {"role": "assistant", "content": "Jonny Whizbang was born on February 22, 1957."},
            ]
        }
    ).encode()
    block = (line + b"\n") * (MIB // (len(line) + 1))
    block += b" " * (MIB - len(block) - 1) + b"\n"  # padding: a blank-ish line keeps the size exact
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            md5.update(piece)
            written += len(piece)
    return md5.hexdigest()


def _stored_md5(blobs: DirectoryBlobStore, key: str) -> tuple[int, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with blobs.open(key) as stream:
        while chunk := stream.read(8 * MIB):
            md5.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest()


def test_a_1_gib_file_goes_through_upload_file_chunked_in_bounded_memory(
    sdk: openai.OpenAI, server: Server, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    path = tmp_path / "large.jsonl"
    md5 = _write_jsonl(path, GIB)
    record_property("server_peak_rss_before_mib", round(server.peak_rss() / MIB, 1))

    done = sdk.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="fine-tune", md5=md5
    )
    path.unlink()
    peak = server.peak_rss()
    record_property("server_peak_rss_mib", round(peak / MIB, 1))

    assert done.status == "completed"
    assert done.file is not None
    assert done.file.bytes == GIB
    assert _stored_md5(server.blobs, done.file.id) == (GIB, md5)
    assert [blob.key for blob in server.blobs.list_blobs()] == [done.file.id]  # the 16 parts are gone
    assert peak < PEAK_RSS_LIMIT, f"the server's peak RSS was {peak / MIB:.0f} MiB"


def test_a_large_file_through_files_create_is_stored_in_bounded_memory(
    sdk: openai.OpenAI, server: Server, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    path = tmp_path / "near-limit.jsonl"
    md5 = _write_jsonl(path, 256 * MIB)

    with path.open("rb") as handle:
        created = sdk.files.create(file=(path.name, handle), purpose="fine-tune")
    path.unlink()
    peak = server.peak_rss()
    record_property("server_peak_rss_mib", round(peak / MIB, 1))

    assert _stored_md5(server.blobs, created.id) == (256 * MIB, md5)
    assert peak < PEAK_RSS_LIMIT, f"the server's peak RSS was {peak / MIB:.0f} MiB"
