"""`/v1/uploads` through the official SDK in strict response validation: every endpoint, and every
error naming its parameter and changing nothing."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import session_scope
from service.files import service as files
from service.runtime import Runtime
from service.uploads.models import UploadPartRow
from tests.conftest import bearer
from tests.factories import jonny_dataset

JSONL = "application/jsonl"


def _create(sdk: openai.OpenAI, body: bytes, **overrides: object) -> openai.types.Upload:
    params: dict[str, object] = {
        "bytes": len(body),
        "filename": "train.jsonl",
        "mime_type": JSONL,
        "purpose": "fine-tune",
        **overrides,
    }
    return sdk.uploads.create(**params)  # type: ignore[arg-type]


def _part_keys(runtime: Runtime) -> list[str]:
    with session_scope(runtime.sessions) as session:
        return list(session.scalars(select(UploadPartRow.blob_key)))


def _stored_keys(runtime: Runtime) -> set[str]:
    return {blob.key for blob in runtime.blobs.list_blobs()}


def test_parts_added_out_of_order_complete_into_a_file_in_the_order_given(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)

    second = sdk.uploads.parts.create(upload.id, data=body[1000:])
    first = sdk.uploads.parts.create(upload.id, data=body[:1000])
    done = sdk.uploads.complete(upload.id, part_ids=[first.id, second.id], md5=hashlib.md5(body).hexdigest())

    assert (upload.status, upload.expires_at - upload.created_at) == ("pending", 3600)
    assert (first.object, first.upload_id) == ("upload.part", upload.id)
    assert done.status == "completed"
    assert done.file is not None
    assert (done.file.bytes, done.file.filename, done.file.status) == (len(body), "train.jsonl", "uploaded")
    assert sdk.files.content(done.file.id).content == body
    assert [file.id for file in sdk.files.list().data] == [done.file.id]


def test_the_completed_file_is_validated_like_any_upload(sdk: openai.OpenAI, runtime: Runtime) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)
    done = sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None

    status = files.validate_file(runtime.sessions, runtime.blobs, done.file.id)

    assert status == "processed"
    assert sdk.files.retrieve(done.file.id).status == "processed"


def test_completion_deletes_the_parts_and_their_blobs(sdk: openai.OpenAI, runtime: Runtime) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    parts = [
        sdk.uploads.parts.create(upload.id, data=body[:10]),
        sdk.uploads.parts.create(upload.id, data=body[10:]),
    ]
    parts_stored = _stored_keys(runtime)

    done = sdk.uploads.complete(upload.id, part_ids=[part.id for part in parts])

    assert done.file is not None
    assert parts_stored == {part.id for part in parts}
    assert _stored_keys(runtime) == {done.file.id}
    assert _part_keys(runtime) == []


def test_upload_file_chunked_sends_a_file_on_disk_end_to_end(
    sdk: openai.OpenAI, runtime: Runtime, tmp_path: Path
) -> None:
    body = jonny_dataset() * 3
    path = tmp_path / "big.jsonl"
    path.write_bytes(body)

    done = sdk.uploads.upload_file_chunked(
        file=path, mime_type=JSONL, purpose="fine-tune", part_size=1024, md5=hashlib.md5(body).hexdigest()
    )

    assert done.status == "completed"
    assert done.file is not None
    assert (done.file.filename, done.file.bytes) == ("big.jsonl", len(body))
    assert sdk.files.content(done.file.id).content == body


def test_expires_after_sets_the_files_expiry(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body, expires_after={"anchor": "created_at", "seconds": 7200})
    part = sdk.uploads.parts.create(upload.id, data=body)

    done = sdk.uploads.complete(upload.id, part_ids=[part.id])

    assert done.file is not None
    assert done.file.expires_at == done.file.created_at + 7200


def test_cancel_marks_the_upload_cancelled_and_deletes_its_parts(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    sdk.uploads.parts.create(upload.id, data=body)

    cancelled = sdk.uploads.cancel(upload.id)

    assert (cancelled.status, cancelled.file) == ("cancelled", None)
    assert _stored_keys(runtime) == set()
    assert _part_keys(runtime) == []


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"purpose": "batch"}, "purpose"),
        ({"filename": "train.csv"}, "filename"),
        ({"mime_type": "image/png"}, "mime_type"),
        ({"bytes": 0}, "bytes"),
        ({"bytes": 8 * 1024**3 + 1}, "bytes"),
        ({"expires_after": {"anchor": "created_at", "seconds": 60}}, "expires_after.seconds"),
    ],
)
def test_a_bad_create_is_a_400_naming_the_parameter(
    sdk: openai.OpenAI, runtime: Runtime, overrides: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        _create(sdk, b"x", **overrides)

    assert raised.value.param == param


def test_the_upload_limit_is_a_setting(sdk: openai.OpenAI, runtime: Runtime) -> None:
    runtime.settings.uploads_max_bytes = 100

    with pytest.raises(openai.BadRequestError) as raised:
        _create(sdk, b"x" * 101)

    assert raised.value.param == "bytes"
    assert "100" in raised.value.message


def test_parts_whose_total_differs_from_bytes_are_refused_and_the_upload_stays_usable(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    head = sdk.uploads.parts.create(upload.id, data=body[:100])

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[head.id])
    tail = sdk.uploads.parts.create(upload.id, data=body[100:])
    done = sdk.uploads.complete(upload.id, part_ids=[head.id, tail.id])

    assert (raised.value.param, raised.value.code) == ("part_ids", "bytes_mismatch")
    assert str(len(body)) in raised.value.message
    assert done.status == "completed"


def test_an_md5_that_differs_is_a_400_naming_md5_and_changes_nothing(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[part.id], md5=hashlib.md5(b"other").hexdigest())
    stored_after_refusal = _stored_keys(runtime)
    done = sdk.uploads.complete(upload.id, part_ids=[part.id], md5=hashlib.md5(body).hexdigest())

    assert (raised.value.param, raised.value.code) == ("md5", "md5_mismatch")
    assert hashlib.md5(body).hexdigest() in raised.value.message
    assert stored_after_refusal == {part.id}
    assert sdk.files.list().data == [done.file]


def test_an_unknown_part_id_is_a_400_naming_its_place_in_part_ids(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[part.id, "part_doesnotexist"])

    assert (raised.value.param, raised.value.code) == ("part_ids[1]", "part_not_found")


def test_a_part_of_another_upload_is_refused(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    mine, other = _create(sdk, body), _create(sdk, body)
    elsewhere = sdk.uploads.parts.create(other.id, data=body)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(mine.id, part_ids=[elsewhere.id])

    assert raised.value.param == "part_ids[0]"
    assert sdk.uploads.complete(other.id, part_ids=[elsewhere.id]).status == "completed"


def test_a_part_listed_twice_is_refused(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body * 2)
    part = sdk.uploads.parts.create(upload.id, data=body)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[part.id, part.id])

    assert raised.value.param == "part_ids[1]"


def test_completing_twice_is_a_409_and_makes_no_second_file(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)
    sdk.uploads.complete(upload.id, part_ids=[part.id])

    with pytest.raises(openai.ConflictError) as raised:
        sdk.uploads.complete(upload.id, part_ids=[part.id])

    assert (raised.value.param, raised.value.code) == ("upload_id", "upload_completed")
    assert len(sdk.files.list().data) == 1


def test_a_cancelled_upload_takes_no_parts_and_cannot_complete_or_cancel_again(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)
    sdk.uploads.cancel(upload.id)

    with pytest.raises(openai.ConflictError) as adding:
        sdk.uploads.parts.create(upload.id, data=body)
    with pytest.raises(openai.ConflictError) as completing:
        sdk.uploads.complete(upload.id, part_ids=[part.id])
    with pytest.raises(openai.ConflictError) as cancelling:
        sdk.uploads.cancel(upload.id)

    assert {adding.value.code, completing.value.code, cancelling.value.code} == {"upload_cancelled"}
    assert adding.value.param == "upload_id"


def test_a_part_over_the_part_limit_is_a_413_naming_data_and_stores_nothing(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    runtime.settings.uploads_max_part_bytes = 100
    upload = _create(sdk, b"x" * 101)

    with pytest.raises(openai.APIStatusError) as raised:
        sdk.uploads.parts.create(upload.id, data=b"x" * 101)

    assert raised.value.status_code == 413
    assert raised.value.body["param"] == "data"  # type: ignore[index]
    assert _stored_keys(runtime) == set()
    assert _part_keys(runtime) == []


def test_a_part_without_the_data_field_is_a_400_naming_data(
    sdk: openai.OpenAI, client: TestClient, tenant_key: str
) -> None:
    upload = _create(sdk, b"x" * 10)

    as_json = client.post(f"/v1/uploads/{upload.id}/parts", headers=bearer(tenant_key), json={"data": "x"})
    other_field = client.post(
        f"/v1/uploads/{upload.id}/parts", headers=bearer(tenant_key), files={"bytes": ("p", b"x" * 10)}
    )

    assert as_json.status_code == other_field.status_code == 400
    assert as_json.json()["error"]["param"] == other_field.json()["error"]["param"] == "data"


def test_an_empty_part_is_a_400_naming_data(sdk: openai.OpenAI, runtime: Runtime) -> None:
    upload = _create(sdk, b"x" * 10)

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.parts.create(upload.id, data=b"")

    assert raised.value.param == "data"
    assert _stored_keys(runtime) == set()


def test_an_unknown_upload_is_a_404_naming_upload_id(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.uploads.parts.create("upload_doesnotexist", data=b"x")

    assert (raised.value.param, raised.value.code) == ("upload_id", "upload_not_found")


def test_a_job_can_be_created_on_the_file_an_upload_made(sdk: openai.OpenAI, runtime: Runtime) -> None:
    body = jonny_dataset()
    upload = _create(sdk, body)
    part = sdk.uploads.parts.create(upload.id, data=body)
    done = sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert done.file is not None
    files.validate_file(runtime.sessions, runtime.blobs, done.file.id)

    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=done.file.id)

    assert job.training_file == done.file.id
    assert job.status == "validating_files"  # accepted; a worker submits it


def test_parts_added_in_parallel_complete_in_the_order_given(sdk: openai.OpenAI) -> None:
    body = jonny_dataset()
    pieces = [body[start : start + 500] for start in range(0, len(body), 500)]
    upload = _create(sdk, body)

    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(lambda piece: sdk.uploads.parts.create(upload.id, data=piece), pieces))
    done = sdk.uploads.complete(upload.id, part_ids=[part.id for part in parts])

    assert done.file is not None
    assert sdk.files.content(done.file.id).content == body
