"""Blob deletions that wait for the commit of the transaction that stopped referencing them.

A row is the only way to reach its blob, so a blob may go only once the row's deletion is
committed: deleting first and rolling back would leave a row without a body. `delete_after_commit`
queues the deletion on the session; it runs after the session's next commit and is forgotten on a
rollback. A crash between the commit and the deletion leaves an unreferenced blob, which the
orphan sweep removes (`service.files.orphans`).
"""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from service.blobs.store import BlobStore

log = logging.getLogger(__name__)

_PENDING = "ftm.blob_deletions"


def delete_after_commit(session: Session, blobs: BlobStore, key: str) -> None:
    pending: list[tuple[BlobStore, str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_deletions)
        event.listen(session, "after_soft_rollback", _forget_deletions)
        event.listen(session, "after_transaction_end", _end_of_transaction)
    pending.append((blobs, key))


def pending_deletions(session: Session) -> list[str]:
    """The keys whose deletion waits for this session's commit."""
    return [key for _, key in session.info.get(_PENDING, [])]


def _run_deletions(session: Session) -> None:
    pending: list[tuple[BlobStore, str]] = session.info.get(_PENDING, [])
    due, pending[:] = list(pending), []
    for blobs, key in due:
        try:
            blobs.delete(key)
        except Exception:  # the commit stands; the orphan sweep retries the deletion
            log.warning("blob %s not deleted after commit; the orphan sweep will", key, exc_info=True)


def _forget_deletions(session: Session, _rolled_back: SessionTransaction) -> None:
    # Any rollback, a savepoint's too: a deletion not made is swept later, one made wrongly is lost data.
    session.info.get(_PENDING, []).clear()


def _end_of_transaction(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # closed without a commit: nothing it queued may happen
        session.info.get(_PENDING, []).clear()
