from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO, cast

import openai
import pytest
from fastapi.testclient import TestClient

from service.blobs.store import BlobStore
from service.db import session_scope
from service.files import service as files
from service.files.models import FileRow, FileStatus
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.factories import chat_example, jonny_dataset, make_jsonl


@pytest.fixture
def sdk(client: TestClient, tenant_key: str) -> openai.OpenAI:
    return sdk_for(client, tenant_key)


def _validate_all(runtime: Runtime, *file_ids: str) -> None:
    for file_id in file_ids:
        files.validate_file(runtime.sessions, runtime.blobs, file_id)


def test_an_uploaded_file_is_processed_and_its_content_comes_back(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    body = jonny_dataset()

    created = sdk.files.create(file=("train.jsonl", io.BytesIO(body)), purpose="fine-tune")
    _validate_all(runtime, created.id)

    retrieved = sdk.files.retrieve(created.id)
    assert (created.status, retrieved.status, retrieved.bytes) == ("uploaded", "processed", len(body))
    assert sdk.files.content(created.id).content == body


def test_a_bad_line_marks_the_file_error_naming_the_line(sdk: openai.OpenAI, runtime: Runtime) -> None:
    rows = make_jsonl([chat_example(f"q{n}", f"a{n}") for n in range(12)]).splitlines(keepends=True)
    rows[6] = b'{"messages": [{"role": "user", "content": "no answer"}]}\n'

    created = sdk.files.create(file=("train.jsonl", b"".join(rows)), purpose="fine-tune")
    _validate_all(runtime, created.id)

    retrieved = sdk.files.retrieve(created.id)
    assert retrieved.status == "error"
    assert retrieved.status_details is not None
    assert retrieved.status_details.startswith("Line 7:")


def test_invalid_json_and_too_few_examples_are_reported(sdk: openai.OpenAI, runtime: Runtime) -> None:
    broken = sdk.files.create(file=("a.jsonl", b'{"messages": [\n'), purpose="fine-tune")
    small = sdk.files.create(file=("b.jsonl", make_jsonl([chat_example("q", "a")] * 3)), purpose="fine-tune")

    _validate_all(runtime, broken.id, small.id)

    assert "Line 1: not valid JSON" in (sdk.files.retrieve(broken.id).status_details or "")
    assert "at least 10" in (sdk.files.retrieve(small.id).status_details or "")


def test_an_unknown_purpose_is_a_400_naming_purpose_and_stores_nothing(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="batch")

    assert raised.value.param == "purpose"
    assert sdk.files.list().data == []


def test_an_upload_over_the_limit_is_a_413_and_stores_nothing(sdk: openai.OpenAI, runtime: Runtime) -> None:
    runtime.settings.max_upload_bytes = 100

    with pytest.raises(openai.APIStatusError) as raised:
        sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="fine-tune")

    assert raised.value.status_code == 413
    assert sdk.files.list().data == []
    assert list(runtime.blobs.list_blobs()) == []


def test_list_pages_through_files_newest_first(sdk: openai.OpenAI) -> None:
    ids = [sdk.files.create(file=(f"{n}.jsonl", jonny_dataset()), purpose="fine-tune").id for n in range(3)]

    first = sdk.files.list(limit=2)
    everything = [f.id for f in sdk.files.list(limit=2)]

    assert first.has_more is True
    assert sorted(everything) == sorted(ids)
    assert len(everything) == 3


def test_delete_removes_the_file(sdk: openai.OpenAI) -> None:
    created = sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="fine-tune")

    deleted = sdk.files.delete(created.id)

    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)


def test_another_tenants_file_is_a_404_everywhere(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime
) -> None:
    created = sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="fine-tune")
    other = sdk_for(client, make_key(runtime, "other"), strict=False)

    for call in (other.files.retrieve, other.files.content, other.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(created.id)
    assert other.files.list().data == []
    assert sdk.files.retrieve(created.id).id == created.id


def test_the_validation_report_counts_errors_by_category_with_their_lines(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    rows = make_jsonl([chat_example(f"q{n}", f"a{n}") for n in range(12)]).splitlines(keepends=True)
    rows[2] = rows[9] = b'{"messages": [{"role": "robot", "content": "x"}]}\n'
    created = sdk.files.create(file=("train.jsonl", b"".join(rows)), purpose="fine-tune")
    _validate_all(runtime, created.id)

    body = client.get(f"/v1/files/{created.id}/validation", headers=bearer(tenant_key)).json()

    assert body["status"] == "error"
    assert body["report"]["error_categories"]["unrecognized_role"] == {"count": 2, "lines": [3, 10]}
    assert body["report"]["tokens"]["o200k_base"]["example_tokens"]["min"] > 0
    assert sdk.files.retrieve(created.id).status_details == (
        'Line 3: messages[0] has role "robot"; expected one of system, developer, user, assistant, tool, '
        "function. (3 more errors)"
    )


class _HookedBlobs:
    """The runtime's blob store, running `hook` when a body is opened (mid-validation)."""

    def __init__(self, inner: BlobStore, hook: Callable[[], None]) -> None:
        self.inner = inner
        self.hook = hook

    def open(self, key: str) -> BinaryIO:
        stream = self.inner.open(key)
        self.hook()
        return stream


def test_a_decision_made_while_the_body_is_read_is_kept(sdk: openai.OpenAI, runtime: Runtime) -> None:
    created = sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="fine-tune")

    def decide_elsewhere() -> None:
        with session_scope(runtime.sessions) as session:
            row = session.get(FileRow, created.id)
            assert row is not None
            row.status, row.status_details = FileStatus.ERROR, "decided by another validation"

    status = files.validate_file(
        runtime.sessions, cast(BlobStore, _HookedBlobs(runtime.blobs, decide_elsewhere)), created.id
    )

    assert status == FileStatus.ERROR
    assert sdk.files.retrieve(created.id).status_details == "decided by another validation"


def test_a_file_deleted_while_its_body_is_read_is_left_deleted(sdk: openai.OpenAI, runtime: Runtime) -> None:
    created = sdk.files.create(file=("t.jsonl", jonny_dataset()), purpose="fine-tune")

    def delete_elsewhere() -> None:
        with session_scope(runtime.sessions) as session:
            session.delete(session.get(FileRow, created.id))

    status = files.validate_file(
        runtime.sessions, cast(BlobStore, _HookedBlobs(runtime.blobs, delete_elsewhere)), created.id
    )

    assert status is None
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)
