"""`/v1/webhook_endpoints` driven by the official SDK in strict response-validation mode."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.clock import to_unix, utcnow
from service.db import session_scope
from service.runtime import Runtime
from service.webhooks.models import WebhookEndpointRow
from tests.conftest import bearer, make_key, sdk_for

URL = "http://127.0.0.1:9/hooks"
SUCCEEDED: Final = "fine_tuning.job.succeeded"


def _count_endpoints(runtime: Runtime) -> int:
    with session_scope(runtime.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEndpointRow)) or 0)


def test_creating_an_endpoint_shows_the_secret_once_and_then_only_its_hint(sdk: openai.OpenAI) -> None:
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])

    retrieved = sdk.webhooks.retrieve(created.id)
    listed = sdk.webhooks.list().data

    assert created.signing_secret.startswith("whsec_")
    assert created.signing_secret_hint == f"whsec_…{created.signing_secret[-4:]}"
    assert (retrieved.name, retrieved.url, retrieved.event_types) == ("jobs", URL, [SUCCEEDED])
    assert retrieved.signing_secret_hint == created.signing_secret_hint
    assert "signing_secret" not in retrieved.model_dump()
    assert [e.id for e in listed] == [created.id]
    assert "signing_secret" not in listed[0].model_dump()
    assert created.signing_secret not in sdk.webhooks.with_raw_response.retrieve(created.id).text


def test_an_update_changes_only_the_fields_given(sdk: openai.OpenAI) -> None:
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])

    updated = sdk.webhooks.update(
        created.id, name="all job outcomes", event_types=[SUCCEEDED, "fine_tuning.job.failed"]
    )

    assert (updated.name, updated.url) == ("all job outcomes", URL)
    assert updated.event_types == [SUCCEEDED, "fine_tuning.job.failed"]
    assert sdk.webhooks.retrieve(created.id).name == "all job outcomes"


def test_an_update_that_changes_something_advances_updated_at_and_one_that_does_not_keeps_it(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])
    an_hour_ago = utcnow() - timedelta(hours=1)
    with session_scope(runtime.sessions) as session:
        row = session.get_one(WebhookEndpointRow, created.id)
        row.updated_at = an_hour_ago

    unchanged = sdk.webhooks.update(created.id, name="jobs", url=URL)
    changed = sdk.webhooks.update(created.id, name="renamed")

    assert unchanged.updated_at == to_unix(an_hour_ago)
    assert changed.updated_at is not None
    assert unchanged.updated_at is not None
    assert changed.updated_at > unchanged.updated_at


def test_listing_pages_through_endpoints_newest_first(sdk: openai.OpenAI) -> None:
    ids = [sdk.webhooks.create(name=f"e{n}", url=URL, event_types=[SUCCEEDED]).id for n in range(5)]

    first = sdk.webhooks.list(limit=2)
    raw = sdk.webhooks.with_raw_response.list(limit=2, after=ids[2]).http_response.json()
    everything = [endpoint.id for endpoint in sdk.webhooks.list(limit=2)]

    assert [e.id for e in first.data] == [ids[4], ids[3]]
    assert first.has_more is True
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (ids[1], ids[0], False)
    assert everything == list(reversed(ids))


def test_deleting_an_endpoint_makes_it_a_404(sdk: openai.OpenAI) -> None:
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])

    deleted = sdk.webhooks.delete(created.id)

    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "webhook_endpoint.deleted")
    with pytest.raises(openai.NotFoundError):
        sdk.webhooks.retrieve(created.id)
    assert sdk.webhooks.list().data == []


def test_another_tenant_gets_the_404_of_a_missing_id_on_every_route_and_an_empty_list(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime
) -> None:
    mine = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])
    missing = "we_" + "x" * 24
    headers = bearer(make_key(runtime, "globex"))

    def answers(endpoint_id: str) -> list[tuple[int, str]]:
        path = f"/v1/webhook_endpoints/{endpoint_id}"
        responses = [
            client.get(path, headers=headers),
            client.post(path, headers=headers, json={"name": "mine now"}),
            client.delete(path, headers=headers),
            client.post(f"{path}/rotate_secret", headers=headers, json={}),
            client.post(f"{path}/test", headers=headers, json={"event_type": SUCCEEDED}),
        ]
        return [(r.status_code, r.text.replace(endpoint_id, "<id>")) for r in responses]

    foreign, absent = answers(mine.id), answers(missing)

    assert {status for status, _ in foreign} == {404}
    assert foreign == absent
    assert client.get("/v1/webhook_endpoints", headers=headers).json()["data"] == []
    unchanged = sdk.webhooks.retrieve(mine.id)
    assert (unchanged.name, unchanged.signing_secret_hint) == ("jobs", mine.signing_secret_hint)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/hooks", "http://user:pw@127.0.0.1/hooks", "http://2130706433/", "not a url"]
)
def test_a_bad_url_is_a_400_naming_url_and_creates_nothing(
    sdk: openai.OpenAI, runtime: Runtime, url: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.webhooks.create(name="jobs", url=url, event_types=[SUCCEEDED])

    assert raised.value.param == "url"
    assert _count_endpoints(runtime) == 0


def test_an_unsupported_event_type_is_a_400_naming_event_types_and_creates_nothing(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED, "batch.completed"])

    assert raised.value.param == "event_types"
    assert "batch.completed" in raised.value.message
    assert _count_endpoints(runtime) == 0


def test_a_bad_update_is_a_400_and_changes_nothing(sdk: openai.OpenAI) -> None:
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.webhooks.update(created.id, name="renamed", url="http://169.254.169.254/")

    assert raised.value.param == "url"
    assert sdk.webhooks.retrieve(created.id).name == "jobs"


def test_an_unknown_request_field_is_a_400_naming_it(client: TestClient, tenant_key: str) -> None:
    body = {"name": "jobs", "url": URL, "event_types": [SUCCEEDED], "enabled": True}

    response = client.post("/v1/webhook_endpoints", headers=bearer(tenant_key), json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "enabled"


@pytest.mark.parametrize("flag", ["true", 1])
def test_rotating_with_a_flag_that_is_not_a_json_boolean_is_a_400_and_keeps_the_secret(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str, flag: object
) -> None:
    # Given an endpoint
    created = sdk.webhooks.create(name="jobs", url=URL, event_types=[SUCCEEDED])

    # When its secret is rotated with the flag written as a string or a number
    response = client.post(
        f"/v1/webhook_endpoints/{created.id}/rotate_secret",
        headers=bearer(tenant_key),
        json={"keep_old_secret_active_for_24_hours": flag},
    )

    # Then it is refused naming the flag, and the secret is unchanged
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "keep_old_secret_active_for_24_hours"
    assert sdk.webhooks.retrieve(created.id).signing_secret_hint == created.signing_secret_hint


def test_a_key_without_the_webhooks_scope_gets_a_403(client: TestClient, runtime: Runtime) -> None:
    sdk = sdk_for(client, make_key(runtime, "acme", frozenset({"files"})))

    with pytest.raises(openai.PermissionDeniedError):
        sdk.webhooks.list()


def test_the_event_types_list_names_every_event_the_service_sends(sdk: openai.OpenAI) -> None:
    event_types = sdk.webhooks.event_types.list()

    assert event_types.data == [
        "file.processed",
        "file.failed",
        "fine_tuning.job.running",
        SUCCEEDED,
        "fine_tuning.job.failed",
        "fine_tuning.job.cancelled",
        "fine_tuning.job.evaluation.completed",
        "fine_tuning.job.evaluation.failed",
        "eval.run.succeeded",
        "eval.run.failed",
        "eval.run.canceled",
        "deployment.updated",
        "deployment.deleted",
    ]


def test_the_openapi_document_describes_every_event_with_its_envelope(
    app: FastAPI, sdk: openai.OpenAI
) -> None:
    document = app.openapi()
    listed = sdk.webhooks.event_types.list().data

    assert sorted(document["webhooks"]) == sorted(listed)
    for event_type, operation in document["webhooks"].items():
        body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][body.rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["const"] == event_type
        assert {p["name"] for p in operation["post"]["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
