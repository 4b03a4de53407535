"""`ftm files upload` against the app served on a loopback port: one request for a small file, the
multipart `/v1/uploads` above the threshold, a byte progress bar (none under --json), and with
--wait the validation report, which a validator thread in the test produces as a worker would."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy import select

from ftmcli.app import main
from service.db import session_scope
from service.files import service as files
from service.files.models import FileRow, FileStatus
from service.runtime import Runtime
from service.uploads.models import UploadRow
from tests.factories import chat_example, jonny_dataset, make_jsonl
from tests.servers import serve


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with serve(app) as url:
        yield f"{url}/v1"


@pytest.fixture
def validator(runtime: Runtime) -> Iterator[None]:
    """Validates every uploaded file as soon as it appears, like the files worker."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.05):
            with session_scope(runtime.sessions) as session:
                waiting = list(
                    session.scalars(select(FileRow.id).where(FileRow.status == FileStatus.UPLOADED))
                )
            for file_id in waiting:
                files.validate_file(runtime.sessions, runtime.blobs, file_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def _ftm(base_url: str, key: str, tmp_path: Path, *args: str) -> Result:
    env = {"FTM_BASE_URL": base_url, "FTM_API_KEY": key, "FTM_CONFIG_DIR": str(tmp_path / "config")}
    return CliRunner().invoke(main, ["files", "upload", *args], env=env)


def _bar_completed(stderr: str) -> bool:
    """The progress bar ended with every byte counted: `3.2/3.2 KiB`."""
    return re.search(r"([\d.]+)/\1 KiB", stderr) is not None


def _uploads(runtime: Runtime) -> list[UploadRow]:
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(UploadRow)))


def test_a_small_file_goes_in_one_request_with_a_progress_bar(
    base_url: str, tenant_key: str, runtime: Runtime, tmp_path: Path
) -> None:
    dataset = tmp_path / "train.jsonl"
    dataset.write_bytes(jonny_dataset())

    result = _ftm(base_url, tenant_key, tmp_path, str(dataset))

    assert result.exit_code == 0, result.output
    file_id = result.stdout.strip()
    assert file_id.startswith("file-")
    assert "uploading train.jsonl" in result.stderr
    assert _bar_completed(result.stderr)
    assert _uploads(runtime) == []


def test_above_the_threshold_the_file_goes_in_parts_and_waits_for_its_report(
    base_url: str, tenant_key: str, runtime: Runtime, tmp_path: Path, validator: None
) -> None:
    body = jonny_dataset()
    dataset = tmp_path / "train.jsonl"
    dataset.write_bytes(body)

    result = _ftm(
        base_url,
        tenant_key,
        tmp_path,
        str(dataset),
        "--wait",
        "--json",
        "--multipart-above",
        "0.001",
        "--part-size",
        "0.001",
    )

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["status"], shown["bytes"], shown["validation"]["report"]["examples"]) == (
        "processed",
        len(body),
        len(body.splitlines()),
    )
    assert result.stderr == ""  # no progress under --json
    [upload] = _uploads(runtime)
    assert (upload.status, upload.file_id) == ("completed", shown["id"])
    with session_scope(runtime.sessions) as session:
        stored = session.get(FileRow, shown["id"])
        assert stored is not None
    with runtime.blobs.open(shown["id"]) as stream:
        assert stream.read() == body


def test_an_invalid_file_sent_in_parts_shows_its_bad_line_and_exits_1(
    base_url: str, tenant_key: str, tmp_path: Path, validator: None
) -> None:
    rows = make_jsonl([chat_example(f"q{n}", f"a{n}") for n in range(12)]).splitlines(keepends=True)
    rows[4] = b'{"messages": [{"role": "user", "content": "no answer"}]}\n'
    dataset = tmp_path / "bad.jsonl"
    dataset.write_bytes(b"".join(rows))

    result = _ftm(base_url, tenant_key, tmp_path, str(dataset), "--wait", "--multipart-above", "0.0005")

    assert result.exit_code == 1, result.output
    assert _bar_completed(result.stderr)
    assert "invalid" in result.stdout
    assert "5" in result.stdout.split("invalid", 1)[1]
