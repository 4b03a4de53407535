"""`ftm tenants credentials` against a running service: a tenant admin sets its key (read from a
variable or stdin, never the command line), sees only its last 4 characters, and deletes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from ftmcli.app import main
from service.auth.keys import Scope
from service.config import Settings
from service.runtime import Runtime
from tests.conftest import make_key
from tests.servers import serve

SECRET = "sk-acme-own-account-0001"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.credentials_key = SecretStr(Fernet.generate_key().decode())
    return settings


def test_a_tenant_admin_sets_shows_and_deletes_its_credentials(
    app: FastAPI, runtime: Runtime, tmp_path: Path
) -> None:
    admin = make_key(runtime, "acme", frozenset({Scope.ADMIN}))
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": admin, "FTM_CONFIG_DIR": str(tmp_path)}

        def ftm(*args: str, stdin: str | None = None, **extra: str) -> tuple[int, str]:
            result = CliRunner().invoke(main, list(args), env={**env, **extra}, input=stdin)
            return result.exit_code, result.output

        from_env = ftm(
            "tenants",
            "credentials",
            "set",
            "acme",
            "local",
            "--api-key-env",
            "KEY",
            "--project",
            "p1",
            "--json",
            KEY=SECRET,
        )
        from_stdin = ftm(
            "tenants", "credentials", "set", "acme", "local", "--json", stdin="sk-rotated-key-9xYz\n"
        )
        shown = ftm("tenants", "credentials", "show", "acme", "local")
        deleted = ftm("tenants", "credentials", "delete", "acme", "local", "--json")
        gone = ftm("tenants", "credentials", "show", "acme", "local")
        other = ftm("tenants", "credentials", "show", "globex", "local")

    assert from_env[0] == 0, from_env[1]
    assert (json.loads(from_env[1])["api_key_hint"], json.loads(from_env[1])["project"]) == ("0001", "p1")
    assert from_stdin[0] == 0, from_stdin[1]
    assert json.loads(from_stdin[1])["api_key_hint"] == "9xYz"
    assert shown[0] == 0
    assert "…9xYz" in shown[1]
    assert SECRET not in from_env[1] + shown[1]
    assert json.loads(deleted[1])["provider"] == "local"
    assert gone[0] != 0
    assert "no credentials of its own" in gone[1]
    assert other[0] != 0
