"""`ftm webhooks deliveries` and `ftm webhooks redeliver` against a running service."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ftmcli.app import main
from ftmcli.errors import CliError, ExitCode
from ftmcli.webhooks import parse_since
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks.models import WebhookDeliveryRow
from service.webhooks.service import emit_event
from tests.conftest import bearer
from tests.servers import serve


def test_the_delivery_log_is_listed_filtered_and_a_failed_delivery_redelivered(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str, tmp_path: Path
) -> None:
    headers = bearer(tenant_key)
    endpoint = client.post(
        "/v1/webhook_endpoints",
        headers=headers,
        json={"name": "cli", "url": "http://127.0.0.1:9/hooks", "event_types": ["fine_tuning.job.failed"]},
    ).json()
    tenant_id = client.get("/v1/me", headers=headers).json()["tenant_id"]
    with session_scope(runtime.sessions) as session:
        event = emit_event(session, tenant_id=tenant_id, type="fine_tuning.job.failed", data_id="ftjob-7")
        row = session.query(WebhookDeliveryRow).one()
        row.status, row.attempts, row.next_attempt_at = "failed", 10, None
        event_id, delivery_id = event.id, row.id

    with serve(app) as url:
        env = {"FTM_BASE_URL": f"{url}/v1", "FTM_API_KEY": tenant_key, "FTM_CONFIG_DIR": str(tmp_path)}
        table = CliRunner().invoke(main, ["webhooks", "deliveries", endpoint["id"]], env=env)
        failed = CliRunner().invoke(
            main, ["webhooks", "deliveries", endpoint["id"], "--status", "failed", "--json"], env=env
        )
        pending = CliRunner().invoke(
            main, ["webhooks", "deliveries", endpoint["id"], "--status", "pending", "--json"], env=env
        )
        again = CliRunner().invoke(
            main,
            ["webhooks", "redeliver", endpoint["id"], "--failed-since", "2000-01-01T00:00:00Z", "--json"],
            env=env,
        )
        one = CliRunner().invoke(main, ["webhooks", "redeliver", endpoint["id"], delivery_id], env=env)

    assert table.exit_code == 0, table.output
    assert delivery_id in table.output
    assert event_id in table.output
    assert [d["id"] for d in json.loads(failed.output)["data"]] == [delivery_id]
    assert json.loads(pending.output)["data"] == []
    assert json.loads(again.output)["redelivered"] == 1
    assert one.exit_code != 0  # now pending again: nothing to redeliver
    assert "pending" in one.output


def test_redeliver_needs_a_delivery_or_a_time_but_not_both(tmp_path: Path) -> None:
    env = {"FTM_BASE_URL": "http://127.0.0.1:9/v1", "FTM_API_KEY": "ftm_x", "FTM_CONFIG_DIR": str(tmp_path)}

    neither = CliRunner().invoke(main, ["webhooks", "redeliver", "we_1"], env=env)
    both = CliRunner().invoke(
        main, ["webhooks", "redeliver", "we_1", "whdel_1", "--failed-since", "0"], env=env
    )

    assert (neither.exit_code, both.exit_code) == (ExitCode.USAGE, ExitCode.USAGE)


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("1764547200", 1764547200),
        ("2025-12-01T00:00:00Z", 1764547200),
        ("2025-12-01T01:00:00+01:00", 1764547200),
    ],
)
def test_failed_since_takes_unix_seconds_or_iso_8601(text: str, unix: int) -> None:
    assert parse_since(text) == unix


def test_failed_since_refuses_anything_else() -> None:
    with pytest.raises(CliError) as refused:
        parse_since("yesterday")

    assert refused.value.exit_code == ExitCode.USAGE
