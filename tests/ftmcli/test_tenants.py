"""`ftm tenants` against a running service: a platform admin creates a tenant and sets its limits,
budget and upload policy; what is not given is kept; a tenant admin may not set limits."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fastapi import FastAPI

from ftmcli.app import main
from service.auth.keys import Scope
from service.runtime import Runtime
from tests.conftest import make_key
from tests.servers import serve


def test_a_platform_admin_creates_a_tenant_and_sets_its_settings(
    app: FastAPI, runtime: Runtime, admin_key: str, tmp_path: Path
) -> None:
    tenant_admin = make_key(runtime, "acme", frozenset({Scope.ADMIN}))
    with serve(app) as url:

        def ftm(key: str, *args: str) -> tuple[int, str]:
            env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": key, "FTM_CONFIG_DIR": str(tmp_path)}
            result = CliRunner().invoke(main, list(args), env=env)
            return result.exit_code, result.output

        created = ftm(admin_key, "tenants", "create", "search", "--json")
        limited = ftm(
            admin_key, "tenants", "set", "search", "--requests-per-minute", "60", "--budget", "25", "--json"
        )
        policy = ftm(admin_key, "tenants", "set", "search", "--personal-data", "redact", "--json")
        table = ftm(admin_key, "tenants", "list")
        refused = ftm(tenant_admin, "tenants", "set", "acme", "--tokens-per-minute", "5")
        nothing = ftm(admin_key, "tenants", "set", "search")

    assert created[0] == 0, created[1]
    assert json.loads(created[1])["name"] == "search"
    assert limited[0] == 0, limited[1]
    after = json.loads(policy[1])
    assert (after["requests_per_minute"], after["monthly_training_budget_usd"]) == (60, 25.0)
    assert after["personal_data_policy"] == "redact"
    assert "search" in table[1]
    assert "redact" in table[1]
    assert refused[0] != 0
    assert "platform" in refused[1]
    assert nothing[0] == 2
