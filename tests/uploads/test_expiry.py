"""An upload expires an hour after its creation: refused at once by every route, and marked
`expired` with its parts deleted by the beat sweep. The app's clock is the test's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import openai
import pytest
from sqlalchemy import select

from service.db import session_scope
from service.files.orphans import sweep_orphans
from service.runtime import Runtime
from service.uploads import service as uploads
from service.uploads.models import UploadPartRow, UploadRow
from tests.factories import jonny_dataset

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(runtime: Runtime) -> FakeClock:
    clock = FakeClock(START)
    runtime.clock = clock
    return clock


def _status(runtime: Runtime, upload_id: str) -> str:
    with session_scope(runtime.sessions) as session:
        row = session.get(UploadRow, upload_id)
        assert row is not None
        return row.status


def _pending_with_a_part(sdk: openai.OpenAI) -> tuple[str, str]:
    body = jonny_dataset()
    upload = sdk.uploads.create(
        bytes=len(body), filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    part = sdk.uploads.parts.create(upload.id, data=body)
    return upload.id, part.id


def test_an_upload_expires_at_its_creation_plus_an_hour(sdk: openai.OpenAI, clock: FakeClock) -> None:
    upload = sdk.uploads.create(
        bytes=10, filename="t.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )

    assert upload.created_at == int(START.timestamp())
    assert upload.expires_at == int((START + timedelta(hours=1)).timestamp())


@pytest.mark.parametrize(
    "action",
    [
        lambda sdk, upload_id, part_id: sdk.uploads.parts.create(upload_id, data=b"more"),
        lambda sdk, upload_id, part_id: sdk.uploads.complete(upload_id, part_ids=[part_id]),
        lambda sdk, upload_id, part_id: sdk.uploads.cancel(upload_id),
    ],
    ids=["add a part", "complete", "cancel"],
)
def test_an_upload_past_its_hour_is_refused_before_any_sweep(
    sdk: openai.OpenAI,
    runtime: Runtime,
    clock: FakeClock,
    action: Callable[[openai.OpenAI, str, str], object],
) -> None:
    upload_id, part_id = _pending_with_a_part(sdk)
    clock.advance(hours=1)

    with pytest.raises(openai.ConflictError) as raised:
        action(sdk, upload_id, part_id)

    assert (raised.value.param, raised.value.code) == ("upload_id", "upload_expired")
    assert _status(runtime, upload_id) == "pending"  # refusing changed nothing; the sweep will
    assert sdk.files.list().data == []


def test_an_upload_just_within_its_hour_still_completes(sdk: openai.OpenAI, clock: FakeClock) -> None:
    upload_id, part_id = _pending_with_a_part(sdk)
    clock.advance(minutes=59, seconds=59)

    assert sdk.uploads.complete(upload_id, part_ids=[part_id]).status == "completed"


def test_the_sweep_marks_expired_uploads_and_deletes_their_parts_blobs(
    sdk: openai.OpenAI, runtime: Runtime, clock: FakeClock
) -> None:
    old_id, old_part = _pending_with_a_part(sdk)
    clock.advance(minutes=30)
    young_id, young_part = _pending_with_a_part(sdk)
    clock.advance(minutes=30)

    expired = uploads.sweep_expired(runtime.sessions, runtime.blobs, now=clock())

    assert expired == 1
    assert (_status(runtime, old_id), _status(runtime, young_id)) == ("expired", "pending")
    assert {blob.key for blob in runtime.blobs.list_blobs()} == {young_part}
    with session_scope(runtime.sessions) as session:
        assert list(session.scalars(select(UploadPartRow.id))) == [young_part]
    assert old_part != young_part


def test_the_sweep_is_idempotent(sdk: openai.OpenAI, runtime: Runtime, clock: FakeClock) -> None:
    _pending_with_a_part(sdk)
    clock.advance(hours=2)

    first = uploads.sweep_expired(runtime.sessions, runtime.blobs, now=clock())
    second = uploads.sweep_expired(runtime.sessions, runtime.blobs, now=clock())

    assert (first, second) == (1, 0)


def test_the_sweep_drops_a_part_left_on_an_upload_that_has_ended(
    sdk: openai.OpenAI, runtime: Runtime, clock: FakeClock
) -> None:
    upload_id, part_id = _pending_with_a_part(sdk)
    sdk.uploads.cancel(upload_id)
    with session_scope(runtime.sessions) as session:  # a part whose row landed as the upload ended
        session.add(UploadPartRow(id="part_late", upload_id=upload_id, blob_key="part_late", bytes=4))
    runtime.blobs.put("part_late", [b"late"])

    uploads.sweep_expired(runtime.sessions, runtime.blobs, now=clock())

    assert list(runtime.blobs.list_blobs()) == []
    assert part_id != "part_late"


def test_the_orphan_sweep_keeps_the_blobs_of_pending_parts(
    sdk: openai.OpenAI, runtime: Runtime, clock: FakeClock
) -> None:
    _, part_id = _pending_with_a_part(sdk)

    result = sweep_orphans(
        runtime.sessions, runtime.blobs, now=datetime.now(UTC) + timedelta(days=1), grace=timedelta(hours=1)
    )

    assert result.orphans_removed == 0
    assert [blob.key for blob in runtime.blobs.list_blobs()] == [part_id]
