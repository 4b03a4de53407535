"""Another tenant's upload is the same 404 as a missing one, and its parts are unknown parts."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from service.runtime import Runtime
from tests.conftest import make_key, sdk_for
from tests.factories import jonny_dataset


@pytest.fixture
def theirs(client: TestClient, runtime: Runtime) -> openai.OpenAI:
    return sdk_for(client, make_key(runtime, "theirs"))


def _upload_with_a_part(sdk: openai.OpenAI) -> tuple[str, str]:
    body = jonny_dataset()
    upload = sdk.uploads.create(
        bytes=len(body), filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    return upload.id, sdk.uploads.parts.create(upload.id, data=body).id


def test_another_tenants_upload_is_a_404_on_every_route_and_stays_pending(
    sdk: openai.OpenAI, theirs: openai.OpenAI
) -> None:
    upload_id, part_id = _upload_with_a_part(theirs)

    with pytest.raises(openai.NotFoundError) as adding:
        sdk.uploads.parts.create(upload_id, data=b"x")
    with pytest.raises(openai.NotFoundError) as completing:
        sdk.uploads.complete(upload_id, part_ids=[part_id])
    with pytest.raises(openai.NotFoundError) as cancelling:
        sdk.uploads.cancel(upload_id)

    assert {adding.value.code, completing.value.code, cancelling.value.code} == {"upload_not_found"}
    assert theirs.uploads.complete(upload_id, part_ids=[part_id]).status == "completed"


def test_another_tenants_part_is_an_unknown_part(sdk: openai.OpenAI, theirs: openai.OpenAI) -> None:
    _, their_part = _upload_with_a_part(theirs)
    body = jonny_dataset()
    mine = sdk.uploads.create(
        bytes=len(body), filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.uploads.complete(mine.id, part_ids=[their_part])

    assert (raised.value.param, raised.value.code) == ("part_ids[0]", "part_not_found")


def test_a_completed_upload_makes_a_file_only_its_tenant_sees(
    sdk: openai.OpenAI, theirs: openai.OpenAI
) -> None:
    upload_id, part_id = _upload_with_a_part(theirs)
    done = theirs.uploads.complete(upload_id, part_ids=[part_id])
    assert done.file is not None

    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(done.file.id)
    assert sdk.files.list().data == []
