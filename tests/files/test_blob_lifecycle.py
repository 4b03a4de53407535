"""A file's body and its row stay in step: written before the row commits but reachable only
through it, deleted only after the deletion commits, and whatever a rollback or a crash leaves
behind is removed by the orphan sweep. On both blob stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from service.auth import service as auth
from service.blobs.directory import DirectoryBlobStore
from service.blobs.store import BlobStore
from service.clock import utcnow
from service.config import Settings
from service.db import session_scope
from service.errors import NotFound
from service.files import orphans
from service.files import service as files
from service.runtime import Runtime
from tests.factories import jonny_dataset
from tests.s3 import use_s3

GRACE = timedelta(hours=1)
LATER = GRACE + timedelta(minutes=1)


@pytest.fixture(params=["dir", "s3"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "dir":
        return settings
    return use_s3(settings, request.getfixturevalue("s3_endpoint"))


class Abort(Exception):
    """Raised inside a transaction to roll it back."""


def _tenant_id(runtime: Runtime) -> str:
    with session_scope(runtime.sessions) as session:
        return auth.get_or_create_tenant(session, "acme").id


def _create_in(session: Session, runtime: Runtime) -> str:
    row = files.create_file(
        session,
        runtime.blobs,
        tenant_id=auth.get_or_create_tenant(session, "acme").id,
        filename="train.jsonl",
        purpose="fine-tune",
        chunks=[jonny_dataset()],
        max_bytes=1024 * 1024,
    )
    return row.id


def _create(runtime: Runtime) -> str:
    with session_scope(runtime.sessions) as session:
        return _create_in(session, runtime)


def _rolled_back(runtime: Runtime, work: Callable[[Session], object]) -> None:
    """Do `work` in a transaction that then rolls back."""
    try:
        with session_scope(runtime.sessions) as session:
            work(session)
            raise Abort
    except Abort:
        return


def _keys(blobs: BlobStore) -> set[str]:
    return {blob.key for blob in blobs.list_blobs()}


def _sweep(runtime: Runtime, *, after: timedelta) -> orphans.SweepResult:
    return orphans.sweep_orphans(runtime.sessions, runtime.blobs, now=utcnow() + after, grace=GRACE)


def test_a_file_whose_transaction_rolls_back_leaves_no_blob_after_the_sweep(runtime: Runtime) -> None:
    created: list[str] = []

    _rolled_back(runtime, lambda session: created.append(_create_in(session, runtime)))

    swept = _sweep(runtime, after=LATER)

    assert swept.orphans_removed == 1
    assert not runtime.blobs.exists(created[0])
    assert _keys(runtime.blobs) == set()


def test_a_delete_whose_transaction_rolls_back_keeps_the_body(runtime: Runtime) -> None:
    file_id = _create(runtime)
    tenant_id = _tenant_id(runtime)

    _rolled_back(
        runtime,
        lambda session: files.delete_file(session, runtime.blobs, tenant_id=tenant_id, file_id=file_id),
    )

    with runtime.blobs.open(file_id) as stream:
        assert stream.read() == jonny_dataset()
    with session_scope(runtime.sessions) as session:
        assert files.get_file(session, tenant_id=tenant_id, file_id=file_id).id == file_id


def test_a_deleted_files_body_goes_only_once_the_deletion_commits(runtime: Runtime) -> None:
    file_id = _create(runtime)
    tenant_id = _tenant_id(runtime)

    with session_scope(runtime.sessions) as session:
        files.delete_file(session, runtime.blobs, tenant_id=tenant_id, file_id=file_id)
        kept_until_commit = runtime.blobs.exists(file_id)

    assert kept_until_commit
    assert not runtime.blobs.exists(file_id)


def test_a_session_closed_without_commit_deletes_nothing(runtime: Runtime) -> None:
    file_id = _create(runtime)
    tenant_id = _tenant_id(runtime)

    session = runtime.sessions()
    files.delete_file(session, runtime.blobs, tenant_id=tenant_id, file_id=file_id)
    session.close()
    with session.begin():  # the same session's next commit runs nothing queued before the close
        pass

    assert runtime.blobs.exists(file_id)


def test_the_sweep_removes_an_old_unreferenced_blob_and_keeps_every_referenced_one(runtime: Runtime) -> None:
    referenced = [_create(runtime), _create(runtime)]
    runtime.blobs.put("file-orphaned", [b"no row"])

    swept = _sweep(runtime, after=LATER)

    assert swept.orphans_removed == 1
    assert _keys(runtime.blobs) == set(referenced)


def test_the_sweep_keeps_a_young_unreferenced_blob(runtime: Runtime) -> None:
    runtime.blobs.put("file-in-flight", [b"its row is not committed yet"])

    swept = _sweep(runtime, after=timedelta(0))

    assert swept.orphans_removed == 0
    assert _keys(runtime.blobs) == {"file-in-flight"}


class _UnreachableForDeletes(DirectoryBlobStore):
    def delete(self, key: str) -> None:
        raise OSError("the storage did not answer")


def test_a_deletion_that_fails_after_the_commit_keeps_the_commit_and_the_sweep_removes_the_body(
    runtime: Runtime,
) -> None:
    file_id = _create(runtime)
    tenant_id = _tenant_id(runtime)
    flaky = _UnreachableForDeletes(runtime.settings.blob_dir)

    with session_scope(runtime.sessions) as session:
        files.delete_file(session, flaky, tenant_id=tenant_id, file_id=file_id)
    left_behind = runtime.blobs.exists(file_id)
    swept = _sweep(runtime, after=LATER)

    with session_scope(runtime.sessions) as session, pytest.raises(NotFound):
        files.get_file(session, tenant_id=tenant_id, file_id=file_id)
    assert (left_behind, swept.orphans_removed, runtime.blobs.exists(file_id)) == (True, 1, False)
