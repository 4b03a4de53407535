from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from service.cli import main
from service.config import Settings, get_settings
from tests.conftest import bearer


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FTM_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FTM_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_keys_create_makes_a_working_key_for_a_new_tenant(client: TestClient) -> None:
    result = CliRunner().invoke(main, ["keys", "create", "--tenant", "second", "--scope", "files"])

    key = result.stdout.strip()
    caller = client.get("/v1/me", headers=bearer(key)).json()
    assert result.exit_code == 0, result.output
    assert (caller["tenant"], caller["scopes"]) == ("second", ["files"])


@pytest.mark.usefixtures("cli_env")
def test_keys_create_rejects_an_unknown_scope_and_creates_nothing(client: TestClient) -> None:
    result = CliRunner().invoke(main, ["keys", "create", "--tenant", "third", "--scope", "root"])
    listing = CliRunner().invoke(main, ["keys", "list"])

    assert result.exit_code == 1
    assert "Unknown scope(s) root" in result.output
    assert listing.stdout == ""


@pytest.mark.usefixtures("cli_env")
def test_keys_create_grants_the_platform_scope(client: TestClient) -> None:
    result = CliRunner().invoke(main, ["keys", "create", "--tenant", "ops", "--scope", "platform"])

    response = client.get("/v1/tenants", headers=bearer(result.stdout.strip()))
    assert result.exit_code == 0, result.output
    assert response.status_code == 200


@pytest.mark.usefixtures("cli_env")
def test_keys_revoke_refuses_the_last_active_platform_key_and_it_keeps_working(
    client: TestClient, admin_key: str
) -> None:
    key_id = client.get("/v1/me", headers=bearer(admin_key)).json()["key_id"]

    result = CliRunner().invoke(main, ["keys", "revoke", key_id])

    assert result.exit_code == 1
    assert "last active key with the 'platform' scope" in result.output
    assert client.get("/v1/tenants", headers=bearer(admin_key)).status_code == 200


def test_ftm_dev_without_the_development_tools_says_how_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "devtools.devstack", None)  # as in the image: no devtools/

    result = CliRunner().invoke(main, ["dev"])

    assert result.exit_code == 1
    assert "`ftm dev` needs the development tools" in result.output
    assert "make run" in result.output
