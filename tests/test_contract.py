"""The OpenAPI document says what the app answers: each operation's errors in OpenAI's shape, the
bearer key, the limits the server enforces; and a 405 names every method of its path."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.openapi import openapi_document
from tests.conftest import bearer

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_authenticated_operation_documents_its_401_and_403_in_openai_error_shape(
    document: dict[str, Any],
) -> None:
    # Given the operations under /v1 (all need a key; /v1/me needs no scope)
    operations = [op for op in _operations(document) if op[1].startswith("/v1/")]

    # When their responses are read
    # Then each declares the bearer key and documents 401, and 403 where a scope is checked
    for method, path, operation in operations:
        responses = operation["responses"]
        assert operation["security"] == [{"bearerAuth": []}], (method, path)
        assert responses["401"]["content"]["application/json"]["schema"] == ERROR_SCHEMA, (method, path)
        assert ("403" in responses) == (path != "/v1/me"), (method, path)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_operations_on_an_object_document_its_404_and_bodies_their_400_and_413(
    document: dict[str, Any],
) -> None:
    # Given every operation
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        # Then one addressing an object can be a 404, one taking a body a 400 or a 413
        if "{" in path:
            assert "404" in responses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), (method, path)


def test_no_operation_documents_a_422_the_app_never_sends(document: dict[str, Any]) -> None:
    # Given that a request that fails validation is a 400 here, as at OpenAI
    # When the document is read
    statuses = {status for _, _, operation in _operations(document) for status in operation["responses"]}

    # Then it promises no 422, and has no schema for one
    assert "422" not in statuses
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.parametrize(
    ("path", "maximum"),
    [
        ("/v1/files", 10_000),
        ("/v1/fine_tuning/jobs", 100),
        ("/v1/fine_tuning/jobs/{job_id}/events", 1000),
        ("/v1/fine_tuning/jobs/{job_id}/checkpoints", 100),
        ("/v1/webhook_endpoints", 100),
    ],
)
def test_each_list_documents_its_limit_range_and_a_non_empty_cursor(
    document: dict[str, Any], path: str, maximum: int
) -> None:
    # Given a paged list
    parameters = {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}

    # Then its limit range and the cursor's form are in the contract
    assert (parameters["limit"]["minimum"], parameters["limit"]["maximum"]) == (1, maximum)
    assert parameters["after"]["anyOf"][0] == {"type": "string", "minLength": 1}


def test_a_file_upload_is_documented_as_multipart(document: dict[str, Any]) -> None:
    # Given the upload operation
    body = document["paths"]["/v1/files"]["post"]["requestBody"]

    # Then a client following the contract sends multipart/form-data, as the SDK does
    assert list(body["content"]) == ["multipart/form-data"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/files/file-x", "DELETE, GET"),
        ("OPTIONS", "/v1/files", "GET, POST"),
        ("PATCH", "/v1/webhook_endpoints/we_x", "DELETE, GET, POST"),
        ("PUT", "/v1/models/ft:gpt-4o-mini-2024-07-18:acme::x", "DELETE, GET"),
        ("PUT", "/v1/fine_tuning/jobs", "GET, POST"),
    ],
)
def test_a_405_names_every_method_of_the_path_in_allow(
    client: TestClient, tenant_key: str, method: str, path: str, allowed: str
) -> None:
    # Given a path served by several routes, one per method
    # When it is called with a method none of them serves
    response = client.request(method, path, headers=bearer(tenant_key))

    # Then the 405 lists them all, in OpenAI's error shape
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]["code"] == "method_not_allowed"
