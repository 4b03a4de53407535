"""JSON bodies hold JSON numbers only: `NaN`, `Infinity` and numbers beyond a float's range are a 400
naming the field, on every JSON route; a malformed body is a 400 that names no parameter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.jobs.models import JobRow
from service.runtime import Runtime
from tests.conftest import bearer

JSON = {"Content-Type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]


def _job_body(hyperparameters: str) -> str:
    return '{"model": "gpt-4o-mini-2024-07-18", "training_file": "file-x", ' + hyperparameters + "}"


def _jobs(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.query(JobRow).count()


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(
    ("hyperparameters", "param"),
    [
        pytest.param(
            '"hyperparameters": {"learning_rate_multiplier": %s}',
            "hyperparameters.learning_rate_multiplier",
            id="hyperparameters",
        ),
        pytest.param(
            '"method": {"type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": %s}}}',
            "method.supervised.hyperparameters.learning_rate_multiplier",
            id="method",
        ),
        pytest.param(
            '"integrations": [{"type": "wandb", "wandb": {"project": "p", "x": [1, %s]}}]',
            "integrations[0].wandb.x[1]",
            id="integrations",
        ),
    ],
)
def test_a_non_finite_number_in_a_job_is_a_400_naming_the_field_and_creates_no_job(
    client: TestClient, tenant_key: str, runtime: Runtime, number: str, hyperparameters: str, param: str
) -> None:
    # Given a job whose body holds a number JSON cannot carry, in a typed or a free-form field
    content = _job_body(hyperparameters % number)

    # When it is posted
    response = client.post("/v1/fine_tuning/jobs", content=content, headers={**bearer(tenant_key), **JSON})

    # Then it is refused in OpenAI's shape, naming the field, and no job exists
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, "invalid_value")
    assert number in error["message"]
    assert _jobs(runtime) == 0


@pytest.mark.parametrize("content", ['{"model": "gpt-4o-mini-2024-07-18", ', "{'model': 1}", '{"a": 1} x'])
def test_a_malformed_json_body_is_a_400_that_names_no_parameter(
    client: TestClient, tenant_key: str, content: str
) -> None:
    # Given a body that is not JSON
    # When it is posted to a route that takes a JSON body
    response = client.post("/v1/fine_tuning/jobs", content=content, headers={**bearer(tenant_key), **JSON})

    # Then it is a 400 that blames the body, not a parameter
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (None, "invalid_json")


@pytest.mark.parametrize(
    ("method", "path", "content", "param"),
    [
        ("GET", "/v1/fine_tuning/jobs?after=%00", None, "after"),
        ("GET", "/v1/files/file-%00", None, "file_id"),
        ("DELETE", "/v1/models/ft:x%00", None, "model"),
        (
            "POST",
            "/v1/webhook_endpoints",
            '{"name": "a\\u0000", "url": "https://x", "event_types": []}',
            "name",
        ),
        (
            "POST",
            "/v1/fine_tuning/jobs",
            '{"model": "m", "training_file": "f", "metadata": {"k\\u0000": "v"}}',
            "metadata",
        ),
    ],
)
def test_text_holding_a_nul_character_is_a_400_naming_the_parameter(
    client: TestClient, tenant_key: str, method: str, path: str, content: str | None, param: str
) -> None:
    # Given a parameter or a field whose text holds NUL, which no SQL text column can store
    # When it is sent
    response = client.request(method, path, content=content, headers={**bearer(tenant_key), **JSON})

    # Then it is refused naming it, before anything is looked up or stored
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
