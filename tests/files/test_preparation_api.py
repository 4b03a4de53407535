"""`POST /v1/files/{file_id}/preparations` through HTTP: source uploads, the produced files, their
link to the source, errors that create nothing, and tenant isolation."""

from __future__ import annotations

import io
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db import session_scope
from service.files import preparation_service
from service.files import service as files
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.factories import JONNY_QA
from tests.files.test_preparation import csv_of

MAPPING = {"user_column": "question", "assistant_column": "answer", "system_prompt": "You know Jonny."}


@pytest.fixture
def headers(tenant_key: str) -> dict[str, str]:
    return bearer(tenant_key)


def upload_source(client: TestClient, headers: dict[str, str], body: bytes, name: str = "bio.csv") -> str:
    answer = client.post(
        "/v1/files", headers=headers, files={"file": (name, io.BytesIO(body))}, data={"purpose": "user_data"}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def prepare(client: TestClient, headers: dict[str, str], file_id: str, **options: Any) -> Any:
    return client.post(f"/v1/files/{file_id}/preparations", headers=headers, json={**MAPPING, **options})


def file_ids(client: TestClient, headers: dict[str, str]) -> set[str]:
    return {f["id"] for f in client.get("/v1/files", headers=headers).json()["data"]}


def test_a_source_upload_is_processed_at_once_and_cannot_train(
    client: TestClient, headers: dict[str, str]
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))

    shown = client.get(f"/v1/files/{source}", headers=headers).json()
    job = client.post(
        "/v1/fine_tuning/jobs",
        headers=headers,
        json={"model": "gpt-4o-mini-2024-07-18", "training_file": source},
    )

    assert (shown["purpose"], shown["status"]) == ("user_data", "processed")
    assert (job.status_code, job.json()["error"]["param"]) == (400, "training_file")


@pytest.mark.parametrize(("name", "purpose"), [("bio.xlsx", "user_data"), ("bio.csv", "fine-tune")])
def test_uploads_keep_their_name_rules(
    client: TestClient, headers: dict[str, str], name: str, purpose: str
) -> None:
    answer = client.post(
        "/v1/files", headers=headers, files={"file": (name, io.BytesIO(b"a,b\n"))}, data={"purpose": purpose}
    )

    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "file")


def test_preparing_makes_training_and_validation_files_linked_to_the_source(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    source = upload_source(client, headers, csv_of([*JONNY_QA, JONNY_QA[0]]))

    answer = prepare(client, headers, source, validation_split=3, seed=11)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["object"], body["status"], body["source_file_id"]) == (
        "file.preparation",
        "succeeded",
        source,
    )
    assert (body["summary"]["training_examples"], body["summary"]["validation_examples"]) == (10, 3)
    assert body["summary"]["duplicates"] == [{"row": 15, "first_row": 2}]
    training = client.get(f"/v1/files/{body['training_file']}", headers=headers).json()
    validation = client.get(f"/v1/files/{body['validation_file']}", headers=headers).json()
    assert (training["filename"], training["purpose"], training["status"]) == (
        "bio_train.jsonl",
        "fine-tune",
        "uploaded",
    )
    assert validation["filename"] == "bio_validation.jsonl"
    for file_id in (training["id"], validation["id"]):
        files.validate_file(runtime.sessions, runtime.blobs, file_id)
    report = client.get(f"/v1/files/{training['id']}/validation", headers=headers).json()
    assert (report["status"], report["report"]["examples"]) == ("processed", 10)
    assert (report["source_file_id"], report["preparation_id"]) == (source, body["id"])
    assert client.get(f"/v1/preparations/{body['id']}", headers=headers).json() == body


def test_the_same_seed_through_the_api_gives_the_same_files(
    client: TestClient, headers: dict[str, str]
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))

    first = prepare(client, headers, source, validation_split=0.25, seed=5).json()
    second = prepare(client, headers, source, validation_split=0.25, seed=5).json()

    def content(file_id: str) -> bytes:
        return client.get(f"/v1/files/{file_id}/content", headers=headers).content

    assert content(first["validation_file"]) == content(second["validation_file"])
    assert content(first["training_file"]) == content(second["training_file"])


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"validation_split": 1.5}, "validation_split"),
        ({"validation_split": -1}, "validation_split"),
        ({"validation_split": 13}, "validation_split"),
        ({"format": "xml"}, "format"),
        ({"seed": -3}, "seed"),
        ({"add_stop": True}, "add_stop"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_a_400_naming_the_parameter_and_create_nothing(
    client: TestClient, headers: dict[str, str], options: dict[str, Any], param: str
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))

    answer = prepare(client, headers, source, **options)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert file_ids(client, headers) == {source}


def test_a_source_with_bad_rows_is_a_400_naming_the_first_row(
    client: TestClient, headers: dict[str, str]
) -> None:
    source = upload_source(client, headers, b"question,answer\nWho?,Jonny.\nWhen?,\nWhere?,\n")

    answer = prepare(client, headers, source)

    error = answer.json()["error"]
    assert (answer.status_code, error["param"], error["code"]) == (400, "file_id", "invalid_source")
    assert error["message"] == (
        "The source file cannot be prepared: Row 3, column 'answer': row 3, column 'answer' is empty. (1 more problems)"
    )
    assert file_ids(client, headers) == {source}


def test_a_fine_tune_file_is_not_a_source(client: TestClient, headers: dict[str, str]) -> None:
    sdk = sdk_for(client, headers["Authorization"].removeprefix("Bearer "))
    jsonl = sdk.files.create(
        file=("t.jsonl", io.BytesIO(b'{"prompt": "a", "completion": "b"}\n')), purpose="fine-tune"
    )

    answer = prepare(client, headers, jsonl.id)

    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "file_id")


def test_a_large_source_is_queued_and_a_worker_prepares_it(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))
    runtime.settings.preparation_inline_bytes = 100

    queued = prepare(client, headers, source, validation_split=3, seed=2).json()
    files_before = file_ids(client, headers)
    status = preparation_service.run_preparation(
        runtime.sessions, runtime.blobs, queued["id"], max_upload_bytes=runtime.settings.max_upload_bytes
    )
    again = preparation_service.run_preparation(
        runtime.sessions, runtime.blobs, queued["id"], max_upload_bytes=runtime.settings.max_upload_bytes
    )

    done = client.get(f"/v1/preparations/{queued['id']}", headers=headers).json()
    assert (queued["status"], queued["training_file"]) == ("queued", None)
    assert files_before == {source}
    assert (status, again, done["status"]) == ("succeeded", "succeeded", "succeeded")
    assert file_ids(client, headers) == {source, done["training_file"], done["validation_file"]}
    assert done["summary"]["validation_examples"] == 3
    with session_scope(runtime.sessions) as session:
        assert (
            session.scalar(select(func.count()).select_from(OutboxRow)) == 3
        )  # the prepare, two validations


def test_a_queued_source_with_bad_rows_fails_naming_the_row_and_creates_no_file(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    source = upload_source(client, headers, b"question,answer\nWho?,Jonny.\nWhen?,\n")
    runtime.settings.preparation_inline_bytes = 10
    queued = prepare(client, headers, source).json()

    status = preparation_service.run_preparation(
        runtime.sessions, runtime.blobs, queued["id"], max_upload_bytes=runtime.settings.max_upload_bytes
    )

    failed = client.get(f"/v1/preparations/{queued['id']}", headers=headers).json()
    assert (status, failed["status"], failed["training_file"]) == ("failed", "failed", None)
    assert failed["error"] == {
        "message": "The source file cannot be prepared: Row 3, column 'answer': row 3, column 'answer' is empty.",
        "param": "file_id",
        "code": "invalid_source",
    }
    assert file_ids(client, headers) == {source}


def test_a_queued_source_deleted_before_the_worker_runs_fails(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))
    runtime.settings.preparation_inline_bytes = 10
    queued = prepare(client, headers, source).json()
    client.delete(f"/v1/files/{source}", headers=headers)

    preparation_service.run_preparation(
        runtime.sessions, runtime.blobs, queued["id"], max_upload_bytes=runtime.settings.max_upload_bytes
    )

    failed = client.get(f"/v1/preparations/{queued['id']}", headers=headers).json()
    assert (failed["status"], failed["error"]["message"]) == (
        "failed",
        "The source file was deleted before it was prepared.",
    )


def test_another_tenants_source_is_a_404_and_their_files_stay_theirs(
    client: TestClient, headers: dict[str, str], runtime: Runtime
) -> None:
    theirs = bearer(make_key(runtime, "theirs"))
    source = upload_source(client, theirs, csv_of(JONNY_QA))

    mine = prepare(client, headers, source)
    missing = prepare(client, headers, "file-doesnotexist00000000000")
    made = prepare(client, theirs, source).json()

    assert mine.status_code == 404
    assert mine.text == missing.text.replace("file-doesnotexist00000000000", source)
    assert file_ids(client, headers) == set()
    assert client.get(f"/v1/files/{made['training_file']}/validation", headers=headers).status_code == 404
    assert client.get(f"/v1/preparations/{made['id']}", headers=headers).status_code == 404


def test_the_sdk_uploads_source_data_with_purpose_user_data(client: TestClient, tenant_key: str) -> None:
    sdk = sdk_for(client, tenant_key)

    created = sdk.files.create(
        file=("bio.json", io.BytesIO(b'[{"question": "q", "answer": "a"}]')), purpose="user_data"
    )

    assert (created.purpose, created.status) == ("user_data", "processed")
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve("file-doesnotexist00000000000")


def _policies(client: TestClient, headers: dict[str, str], preparation: dict[str, Any]) -> list[Any]:
    return [
        client.get(f"/v1/files/{preparation[key]}/validation", headers=headers).json()["personal_data_policy"]
        for key in ("training_file", "validation_file")
    ]


def test_prepared_files_get_their_tenants_personal_data_policy(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    headers = bearer(make_key(runtime, "careful"))
    client.post("/v1/tenants/careful", json={"personal_data_policy": "reject"}, headers=bearer(admin_key))
    source = upload_source(client, headers, csv_of(JONNY_QA))

    made = prepare(client, headers, source, validation_split=3, seed=1).json()

    assert _policies(client, headers, made) == ["reject", "reject"]


def test_a_queued_preparation_gives_its_files_the_tenants_policy_when_the_worker_makes_them(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    headers = bearer(make_key(runtime, "careful"))
    client.post("/v1/tenants/careful", json={"personal_data_policy": "redact"}, headers=bearer(admin_key))
    source = upload_source(client, headers, csv_of(JONNY_QA))
    runtime.settings.preparation_inline_bytes = 100
    queued = prepare(client, headers, source, validation_split=3, seed=1).json()

    preparation_service.run_preparation(
        runtime.sessions, runtime.blobs, queued["id"], max_upload_bytes=runtime.settings.max_upload_bytes
    )

    done = client.get(f"/v1/preparations/{queued['id']}", headers=headers).json()
    assert _policies(client, headers, done) == ["redact", "redact"]


def test_a_preparations_own_policy_overrides_the_tenants(
    client: TestClient, runtime: Runtime, admin_key: str
) -> None:
    headers = bearer(make_key(runtime, "careful"))
    client.post("/v1/tenants/careful", json={"personal_data_policy": "reject"}, headers=bearer(admin_key))
    source = upload_source(client, headers, csv_of(JONNY_QA))

    made = prepare(client, headers, source, validation_split=3, seed=1, personal_data="warn").json()

    assert made["options"]["personal_data"] == "warn"
    assert _policies(client, headers, made) == ["warn", "warn"]


def test_prepared_files_get_the_service_default_policy_without_a_tenant_one(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    headers = bearer(tenant_key)
    runtime.settings.personal_data_policy = "redact"
    source = upload_source(client, headers, csv_of(JONNY_QA))

    made = prepare(client, headers, source, validation_split=3, seed=1).json()

    assert _policies(client, headers, made) == ["redact", "redact"]


def test_an_unknown_preparation_policy_is_a_400_naming_it(
    client: TestClient, headers: dict[str, str]
) -> None:
    source = upload_source(client, headers, csv_of(JONNY_QA))

    answer = prepare(client, headers, source, personal_data="shred")

    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "personal_data")
