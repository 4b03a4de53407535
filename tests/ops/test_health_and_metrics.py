from __future__ import annotations

import logging

import pytest
import redis
from fastapi.testclient import TestClient

from service.logs import RedactingFilter, redact, request_id_var
from service.runtime import Runtime
from tests.conftest import bearer


def test_healthz_says_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_is_ready_when_database_and_redis_answer(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(client: TestClient, runtime: Runtime) -> None:
    runtime.__dict__["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "unreachable"}


def test_every_response_carries_a_request_id_and_keeps_a_valid_incoming_one(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    kept = client.get("/healthz", headers={"x-request-id": "caller-123"}).headers["x-request-id"]

    assert generated.startswith("req_")
    assert kept == "caller-123"


def test_metrics_count_requests_by_route_template(client: TestClient, admin_key: str) -> None:
    client.get("/v1/me", headers=bearer(admin_key))

    text = client.get("/metrics").text

    assert 'ftm_http_requests_total{method="GET",route="/v1/me",status="200"} 1.0' in text


@pytest.mark.parametrize(
    "secret",
    [
        "ftm_abcdefgh0123456789abcdefghij",
        "sk-proj-0123456789abcdefghijkl",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_secrets_are_masked_in_log_lines(secret: str) -> None:
    assert secret not in redact(f"calling with {secret} now")


def test_a_log_record_carries_the_request_id_and_no_bearer_token() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "header was %s", ("Bearer abc.def-123",), None)
    token = request_id_var.set("req_42")
    try:
        RedactingFilter().filter(record)
    finally:
        request_id_var.reset(token)

    assert (record.getMessage(), record.__dict__["request_id"]) == ("header was Bearer ***", "req_42")
