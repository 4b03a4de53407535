"""`GET /v1/usage`: grouping by day or hour, filters, and only the caller's tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.db import session_scope
from service.runtime import Runtime
from service.usage.records import BucketKey, Counters
from service.usage.store import write_sums
from tests.conftest import bearer, make_key
from tests.usage.conftest import flushed_usage

DAY = datetime(2026, 11, 30, tzinfo=UTC)
START = int(DAY.timestamp())


def tenant_of(client: TestClient, key: str) -> tuple[str, str]:
    me = client.get("/v1/me", headers=bearer(key)).json()
    return me["tenant_id"], me["key_id"]


def seed(
    runtime: Runtime, tenant_id: str, key_id: str, *, hour: int, model: str, deployment: str = ""
) -> None:
    key = BucketKey(
        tenant_id, key_id, deployment, 1 if deployment else 0, model, "local", DAY.replace(hour=hour)
    )
    with session_scope(runtime.sessions) as session:
        write_sums(session, {key: Counters(2, 1, 100, 40, 50.0, None)})


def test_usage_is_summed_by_day_and_split_by_hour(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    tenant_id, key_id = tenant_of(client, tenant_key)
    seed(runtime, tenant_id, key_id, hour=3, model="m")
    seed(runtime, tenant_id, key_id, hour=5, model="m")
    window = {"start_time": START, "end_time": START + 86_400}

    by_day = flushed_usage(app, client, tenant_key, **window)["data"]
    by_hour = flushed_usage(app, client, tenant_key, group_by="hour", **window)["data"]

    assert [(b["start_time"], b["requests"], b["input_tokens"]) for b in by_day] == [(START, 4, 200)]
    assert by_day[0]["end_time"] == START + 86_400
    assert by_day[0]["latency_ms_avg"] == 25.0
    assert [b["start_time"] for b in by_hour] == [START + 3 * 3600, START + 5 * 3600]


def test_the_same_bucket_flushed_twice_adds_up(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    tenant_id, key_id = tenant_of(client, tenant_key)
    seed(runtime, tenant_id, key_id, hour=3, model="m")
    seed(runtime, tenant_id, key_id, hour=3, model="m")

    data = flushed_usage(app, client, tenant_key, start_time=START, end_time=START + 86_400)["data"]

    assert [(b["requests"], b["errors"], b["output_tokens"]) for b in data] == [(4, 2, 80)]


def test_filters_narrow_by_model_deployment_key_and_time(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    tenant_id, key_id = tenant_of(client, tenant_key)
    seed(runtime, tenant_id, key_id, hour=3, model="a")
    seed(runtime, tenant_id, key_id, hour=4, model="b", deployment="bot")
    seed(runtime, tenant_id, "key_other", hour=5, model="a")
    window = {"start_time": START, "end_time": START + 86_400, "group_by": "hour"}

    def models(**params: object) -> list[tuple[str, str]]:
        data = flushed_usage(app, client, tenant_key, **{**window, **params})["data"]
        return [(b["model"], b["key_id"]) for b in data]

    assert models(model="a") == [("a", key_id), ("a", "key_other")]
    assert models(deployment="bot") == [("b", key_id)]
    assert models(key_id="key_other") == [("a", "key_other")]
    assert models(start_time=START + 4 * 3600, end_time=START + 5 * 3600) == [("b", key_id)]


def test_a_tenant_sees_only_its_own_usage(
    app: FastAPI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    other = make_key(runtime, "other")
    seed(runtime, *tenant_of(client, other), hour=3, model="theirs")
    seed(runtime, *tenant_of(client, tenant_key), hour=3, model="mine")

    data = flushed_usage(app, client, tenant_key, start_time=START, end_time=START + 86_400)["data"]

    assert [b["model"] for b in data] == ["mine"]


def test_a_range_that_ends_before_it_starts_is_a_400_naming_start_time(
    client: TestClient, tenant_key: str
) -> None:
    answer = client.get(
        "/v1/usage", params={"start_time": START, "end_time": START - 1}, headers=bearer(tenant_key)
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "start_time"


def test_an_unknown_grouping_is_a_400(client: TestClient, tenant_key: str) -> None:
    answer = client.get("/v1/usage", params={"group_by": "week"}, headers=bearer(tenant_key))

    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "group_by"
