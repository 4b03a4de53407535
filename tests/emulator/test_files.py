"""The Files API through the official SDK."""

from __future__ import annotations

import io

import openai
import pytest

from tests.emulator.conftest import upload
from tests.emulator.samples import chat_jsonl


def test_uploaded_file_is_listed_readable_and_deletable(sdk: openai.OpenAI) -> None:
    # Given an uploaded training file
    data = chat_jsonl()
    uploaded = upload(sdk, data)

    # When it is listed, retrieved and read
    listed = sdk.files.list(purpose="fine-tune")
    retrieved = sdk.files.retrieve(uploaded.id)
    content = sdk.files.content(uploaded.id).content

    # Then it is the same processed file with the same bytes
    assert uploaded.id.startswith("file-")
    assert (uploaded.bytes, uploaded.filename, uploaded.status) == (len(data), "train.jsonl", "processed")
    assert [f.id for f in listed.data] == [uploaded.id]
    assert retrieved == uploaded
    assert content == data

    # And when it is deleted it is gone
    deleted = sdk.files.delete(uploaded.id)
    assert deleted.deleted is True
    assert sdk.files.list().data == []
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)


def test_files_list_pages_with_after_and_order(sdk: openai.OpenAI) -> None:
    # Given three files
    ids = [upload(sdk, b"{}\n", name=f"f{i}.jsonl").id for i in range(3)]

    # When listed oldest first one at a time
    first = sdk.files.list(order="asc", limit=1)
    rest = sdk.files.list(order="asc", limit=5, after=first.data[0].id)

    # Then the pages follow upload order
    assert [f.id for f in first.data] == ids[:1]
    assert first.has_more is True
    assert [f.id for f in rest.data] == ids[1:]


def test_upload_with_unknown_purpose_is_rejected_naming_purpose(sdk: openai.OpenAI) -> None:
    # Given / When a file is uploaded with a purpose OpenAI does not accept
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="nonsense")  # type: ignore[arg-type]

    # Then the error names the parameter
    assert caught.value.status_code == 400
    assert caught.value.param == "purpose"
