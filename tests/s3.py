"""An S3-compatible server for the tests: moto's standalone server (`python -m moto.server`, from
the dev extra) in a subprocess on a free loopback port; nothing is downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
from pydantic import SecretStr

from devtools.devstack import free_port
from service.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "ftm-test-access-key"
SECRET_KEY = "ftm-test-secret-key"  # moto accepts any
REGION = "us-east-1"
STARTUP_TIMEOUT_S = 30


@contextmanager
def s3_server(log_path: Path) -> Iterator[str]:
    """Yield the endpoint URL while a moto S3 server answers there."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_it_answers(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_it_answers(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 server exited with code {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the S3 server did not answer within {STARTUP_TIMEOUT_S} s")


def s3_client(endpoint: str) -> S3Client:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(endpoint: str) -> str:
    """A bucket of its own for one test."""
    name = f"ftm-test-{uuid.uuid4().hex[:16]}"
    client = s3_client(endpoint)
    client.create_bucket(Bucket=name)
    client.close()
    return name


def use_s3(settings: Settings, endpoint: str) -> Settings:
    """`settings` with file bodies in a new bucket of the test S3 server."""
    return settings.model_copy(
        update={
            "blob_store": "s3",
            "s3_bucket": new_bucket(endpoint),
            "s3_endpoint_url": endpoint,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SecretStr(SECRET_KEY),
            "s3_prefix": "blobs/",
        }
    )
