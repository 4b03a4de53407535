from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.logs import RedactingFilter


def _fail() -> None:
    raise RuntimeError("a bug in a route")


@pytest.fixture
def failing_client(app: FastAPI) -> Iterator[TestClient]:
    app.add_api_route("/v1/failing", _fail)
    # Without the fix the error escapes to Starlette's outer middleware; let the test see its reply.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RedactingFilter())  # as the service's handler: it stamps the request id

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    collector = _Collector()
    root = logging.getLogger()
    level = root.level
    root.addHandler(collector)
    root.setLevel(logging.INFO)
    yield collector.records
    root.removeHandler(collector)
    root.setLevel(level)


def test_an_unhandled_error_is_logged_with_the_request_id_of_its_access_line(
    failing_client: TestClient, records: list[logging.LogRecord]
) -> None:
    response = failing_client.get("/v1/failing", headers={"x-request-id": "req-boom"})

    error = next(record for record in records if record.getMessage() == "unhandled error")
    access = next(record for record in records if record.getMessage() == "GET /v1/failing 500")
    assert response.status_code == 500
    assert (error.__dict__["request_id"], access.__dict__["request_id"]) == ("req-boom", "req-boom")
    assert "RuntimeError: a bug in a route" in (error.exc_text or "")


def test_an_unhandled_error_is_an_openai_shaped_500_carrying_the_request_id(
    failing_client: TestClient,
) -> None:
    response = failing_client.get("/v1/failing")

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert response.headers["x-request-id"].startswith("req_")
