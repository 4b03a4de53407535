"""Fixtures for the usage tests: the fake provider wired in, and reading usage back."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.proxy.conftest import upstream

__all__ = ["upstream"]


def flushed_usage(app: FastAPI, client: TestClient, key: str, **params: Any) -> dict[str, Any]:
    """`GET /v1/usage` once this process's buffered usage is written."""
    assert app.state.usage.flush()
    answer = client.get("/v1/usage", params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def totals(body: dict[str, Any]) -> dict[str, int]:
    buckets = body["data"]
    return {
        name: sum(bucket[name] for bucket in buckets)
        for name in ("requests", "errors", "input_tokens", "output_tokens")
    }
