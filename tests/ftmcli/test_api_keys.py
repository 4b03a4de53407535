"""`ftm api-keys` against a running service: a tenant admin makes a key (shown once), sees it
listed by its prefix only, limits it and revokes it, and the revoked key stops working."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ftmcli.app import main
from service.auth.keys import Scope
from service.runtime import Runtime
from tests.conftest import bearer, make_key
from tests.servers import serve


def test_a_tenant_admin_makes_lists_limits_and_revokes_a_key(
    app: FastAPI, client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    admin = make_key(runtime, "acme", frozenset({Scope.ADMIN}))
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": admin, "FTM_CONFIG_DIR": str(tmp_path)}

        def ftm(*args: str) -> dict[str, object]:
            result = CliRunner().invoke(main, [*args, "--json"], env=env)
            assert result.exit_code == 0, result.output
            return dict(json.loads(result.stdout))

        created = ftm(
            "api-keys", "create", "--name", "ci", "--scope", "inference", "--requests-per-minute", "30"
        )
        key_id, key = str(created["id"]), str(created["key"])
        works = client.get("/v1/me", headers=bearer(key)).status_code
        listed = ftm("api-keys", "list")
        limited = ftm("api-keys", "set", key_id, "--tokens-per-minute", "1000")
        revoked = ftm("api-keys", "revoke", key_id)

    assert works == 200
    (mine,) = [entry for entry in listed["data"] if entry["id"] == key_id]  # type: ignore[attr-defined]
    assert "key" not in mine
    assert key.startswith(mine["prefix"])
    assert (limited["requests_per_minute"], limited["tokens_per_minute"]) == (30, 1000)
    assert revoked["revoked_at"] is not None
    assert client.get("/v1/me", headers=bearer(key)).status_code == 401
