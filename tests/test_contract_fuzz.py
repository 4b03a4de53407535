"""The committed contract (`openapi/openapi.json`) says what the app does: Schemathesis generates
requests from it, valid and invalid, sends them to the app in-process with a valid admin key, and
checks every answer: no server error, a documented status, a body of the documented shape, invalid
input refused, and an `Allow` header that lists every method of the path.

The provider is the fake one of the proxy tests, and webhook deliveries go to a mock transport, so
every route can be fuzzed without leaving the process. `FTM_FUZZ_MAX_EXAMPLES` (default
`MAX_EXAMPLES`) raises the number of requests per operation for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from service.runtime import Runtime
from service.webhooks.router import get_url_guard, get_webhook_http
from service.webhooks.urls import UrlGuard
from tests.conftest import bearer
from tests.proxy.fakes import FakeUpstream, attach

MAX_EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]

CONTRACT = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
config = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": int(os.environ.get("FTM_FUZZ_MAX_EXAMPLES", MAX_EXAMPLES)),
            # Every request carries the fuzzing key; authentication has tests of its own.
            "with-security-parameters": False,
        }
    }
)
schema = schemathesis.openapi.from_path(CONTRACT, config=config)


def _webhook_receiver() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(204))) as http:
        yield http


def _resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]  # no DNS lookups for generated host names


@pytest.fixture
def fuzzed_app(app: FastAPI, runtime: Runtime) -> Iterator[FastAPI]:
    sync_http = attach(runtime, FakeUpstream())
    app.dependency_overrides[get_webhook_http] = _webhook_receiver
    app.dependency_overrides[get_url_guard] = lambda: UrlGuard.for_env("dev", resolve=_resolve_to_loopback)
    yield app
    asgi.shutdown_lifespans()
    sync_http.close()


@schema.parametrize()
@hypothesis.settings(
    # One app (and one database) serves all of an operation's examples: state builds up as it would.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
    deadline=None,
    database=None,
    derandomize=True,
)
def test_the_app_answers_as_its_contract_says(
    case: schemathesis.Case[Any], fuzzed_app: FastAPI, admin_key: str
) -> None:
    # Given a request generated from the contract, valid or not, sent with a valid key
    # When the app answers it
    # Then the answer is one the contract documents
    case.call_and_validate(app=fuzzed_app, headers=bearer(admin_key), checks=CHECKS)
