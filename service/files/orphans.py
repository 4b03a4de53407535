"""The orphan sweep: remove the blobs that no file (nor upload part) references, once they are old
enough.

A body is written before its row commits and deleted after its deletion commits, so a rollback,
or a crash between the write and the commit or between the commit and the deletion, leaves a blob
that no row references. The sweep (beat, `files.sweep`) removes those older than a grace period,
which leaves a write whose transaction is still open alone, and every referenced blob whatever
its age; it also clears writes that never finished. Idempotent: two sweeps at once only repeat
deletions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.blobs.store import BlobInfo, BlobStore
from service.db import session_scope
from service.files.models import FileRow
from service.uploads.models import UploadPartRow

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    orphans_removed: int
    partial_removed: int


def _batches(blobs: Iterator[BlobInfo]) -> Iterator[list[BlobInfo]]:
    while batch := list(islice(blobs, BATCH)):
        yield batch


def _referenced(session: Session, keys: list[str]) -> set[str]:
    files = session.scalars(select(FileRow.blob_key).where(FileRow.blob_key.in_(keys)))
    parts = session.scalars(select(UploadPartRow.blob_key).where(UploadPartRow.blob_key.in_(keys)))
    return {*files, *parts}


def sweep_orphans(
    sessions: sessionmaker[Session], blobs: BlobStore, *, now: datetime, grace: timedelta
) -> SweepResult:
    """Delete the blobs older than `now - grace` that no file references."""
    cutoff = now - grace
    removed = 0
    old = (blob for blob in blobs.list_blobs() if blob.modified_at < cutoff)
    for batch in _batches(old):
        with session_scope(sessions) as session:
            referenced = _referenced(session, [blob.key for blob in batch])
        for blob in batch:
            if blob.key not in referenced:
                blobs.delete(blob.key)
                removed += 1
    partial = blobs.remove_partial(older_than=cutoff)
    if removed or partial:
        log.info("orphan sweep: %d unreferenced blobs and %d unfinished writes removed", removed, partial)
    return SweepResult(removed, partial)
