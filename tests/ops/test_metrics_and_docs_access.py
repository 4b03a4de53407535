from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.config import Settings
from tests.conftest import bearer

TOKEN = "metrics-token-0123456789abcdef"
NOT_FOUND = {
    "error": {"message": "Not Found", "type": "invalid_request_error", "param": None, "code": "not_found"}
}
DOCS = ["/docs", "/redoc", "/openapi.json"]


@pytest.fixture
def prod(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conftest settings read the environment for what they do not set."""
    monkeypatch.setenv("FTM_ENV", "prod")


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FTM_METRICS_TOKEN", TOKEN)
    return TOKEN


@pytest.mark.usefixtures("prod")
def test_in_prod_without_a_token_metrics_is_a_404_like_an_unknown_path(client: TestClient) -> None:
    response = client.get("/metrics", headers=bearer("anything"))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND == client.get("/no-such-path").json()


@pytest.mark.usefixtures("prod", "metrics_token")
def test_in_prod_with_a_token_metrics_answers_the_right_bearer(client: TestClient) -> None:
    response = client.get("/metrics", headers=bearer(TOKEN))

    assert response.status_code == 200
    assert "ftm_http_requests_total" in response.text


@pytest.mark.usefixtures("prod", "metrics_token")
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("metrics-token-0123456789abcdeX"), bearer(TOKEN[:-1]), {"Authorization": f"Basic {TOKEN}"}],
)
def test_in_prod_with_a_token_metrics_refuses_any_other_caller_with_a_401(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_metrics_token"
    assert TOKEN not in response.text


@pytest.mark.usefixtures("metrics_token")
def test_a_metrics_token_guards_metrics_in_dev_too(client: TestClient) -> None:
    refused, allowed = client.get("/metrics"), client.get("/metrics", headers=bearer(TOKEN))

    assert (refused.status_code, allowed.status_code) == (401, 200)


@pytest.mark.usefixtures("prod")
@pytest.mark.parametrize("path", DOCS)
def test_in_prod_the_interactive_docs_are_off(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.fixture
def docs_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTM_DOCS_ENABLED", "true")


@pytest.mark.usefixtures("prod", "docs_enabled")
@pytest.mark.parametrize("path", DOCS)
def test_in_prod_ftm_docs_enabled_turns_the_docs_back_on(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", *DOCS])
def test_in_dev_metrics_and_docs_stay_open(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_a_metrics_token_shorter_than_16_characters_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="FTM_METRICS_TOKEN must be at least 16 characters"):
        Settings(_env_file=None, metrics_token="short")


def test_an_empty_metrics_token_is_no_token() -> None:
    assert Settings(_env_file=None, metrics_token="").metrics_token is None
