"""`ftm usage` against a running service: a table for people, the endpoint's JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ftmcli.app import main
from service.db import session_scope
from service.runtime import Runtime
from service.usage.records import BucketKey, Counters
from service.usage.store import write_sums
from tests.conftest import bearer
from tests.servers import serve

HOUR = datetime(2026, 11, 30, 3, tzinfo=UTC)


def test_ftm_usage_prints_the_tenants_usage_as_a_table_and_as_json(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str, tmp_path: Path
) -> None:
    me = client.get("/v1/me", headers=bearer(tenant_key)).json()
    with session_scope(runtime.sessions) as session:
        key = BucketKey(
            me["tenant_id"], me["key_id"], "bot", 2, "ft:gpt-4o-mini-2024-07-18:acme::x", "local", HOUR
        )
        write_sums(session, {key: Counters(3, 1, 120, 45, 90.0, 0.000090)})
    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_CONFIG_DIR": str(tmp_path)}
        args = ["usage", "--start", "2026-11-30", "--end", "2026-12-01"]
        table = CliRunner().invoke(main, args, env=env)
        as_json = CliRunner().invoke(main, [*args, "--group-by", "hour", "--json"], env=env)

    assert table.exit_code == 0, table.output
    assert "bot v2" in table.output
    assert "$0.000090" in table.output
    assert as_json.exit_code == 0, as_json.output
    [bucket] = json.loads(as_json.output)["data"]
    assert (bucket["start_time"], bucket["requests"], bucket["output_tokens"]) == (
        int(HOUR.timestamp()),
        3,
        45,
    )
