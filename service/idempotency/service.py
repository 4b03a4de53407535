"""`Idempotency-Key` on creates: a retried request gets the object the first one made.

A create that carries a key claims `(tenant, key)` in the same transaction that creates the object,
so the claim and the object commit together or not at all:

- the same key again (within `KEPT`) with the same parameters: nothing is created; the object the
  first request made comes back, as it is now, with the status the first request had;
- the same key with other parameters, or on another route: a 409 `idempotency_key_reused`;
- two requests with one key at the same moment: one creates; the other waits for it on the key's
  unique index (PostgreSQL) and then answers with that object, or (SQLite, one writer at a time) a
  409 `idempotency_key_in_use` that a retry turns into the answer;
- a create that fails (a 4xx, a crash) leaves no claim: retrying runs it again.

Only the object's id is kept, never the response: a secret shown at creation (a webhook
endpoint's) is not copied into another table. Keys are per tenant and kept for 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.clock import utcnow
from service.db import is_postgres
from service.errors import Conflict, InvalidRequest, NotFound
from service.idempotency.models import IdempotencyKeyRow
from service.tenancy import find_owned

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Created = TypeVar("Created", bound=HasId)
Row = TypeVar("Row")


def checked_key(raw: str | None) -> str | None:
    """The header's key, or None when there is none; a 400 naming the header when it is unusable."""
    if raw is None:
        return None
    if (
        not 1 <= len(raw) <= MAX_KEY_LENGTH
        or not raw.isascii()
        or not raw.isprintable()
        or raw != raw.strip()
    ):
        raise InvalidRequest(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, without "
            "leading or trailing spaces.",
            param=HEADER,
            code="invalid_idempotency_key",
        )
    return raw


def fingerprint(parameters: Any) -> str:
    """A SHA-256 of a request's parameters (JSON-able), the same whatever the order of keys."""
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Idempotency:
    """A create request's idempotency key (None: the request has none) and how to tell the caller
    that an answer is a replay."""

    key: str | None
    mark_replayed: Callable[[], None] = lambda: None

    def create(
        self,
        session: Session,
        *,
        tenant_id: str,
        route: str,
        parameters: Any,
        make: Callable[[], Created],
        reload: Callable[[str], Created | None],
        now: datetime | None = None,
    ) -> Created:
        """`make()` the object, or with a key already used for this request, `reload` the object
        it made (None: deleted since)."""
        if self.key is None:
            return make()
        now = now or utcnow()
        digest = fingerprint(parameters)
        held = self._held(session, tenant_id, now)
        if held is None:
            claimed = self._claim(session, tenant_id, route, digest, now)
            if claimed is not None:
                created = make()
                claimed.object_id = created.id
                return created
            held = self._held(session, tenant_id, now)
            if held is None:  # pragma: no cover - the claim that beat ours rolled back meanwhile
                raise self._in_use()
        return self._replay(held, route, digest, reload)

    def _held(self, session: Session, tenant_id: str, now: datetime) -> IdempotencyKeyRow | None:
        row = session.get(IdempotencyKeyRow, (tenant_id, self.key), populate_existing=True)
        if row is not None and row.expires_at <= now:
            session.delete(row)
            session.flush()
            return None
        return row

    def _claim(
        self, session: Session, tenant_id: str, route: str, digest: str, now: datetime
    ) -> IdempotencyKeyRow | None:
        """The new claim, or None when a concurrent request with this key committed first."""
        assert self.key is not None
        row = IdempotencyKeyRow(
            tenant_id=tenant_id,
            key=self.key,
            route=route,
            fingerprint=digest,
            object_id="",
            created_at=now,
            expires_at=now + KEPT,
        )
        if not is_postgres(session):
            # SQLite has one writer at a time: a concurrent claim shows as a busy database (or, if
            # it committed after this transaction read, a duplicate key); both end this request.
            try:
                session.add(row)
                session.flush()
            except (IntegrityError, OperationalError) as error:
                log.info(
                    "idempotency key of tenant %s used concurrently: %s", tenant_id, type(error).__name__
                )
                raise self._in_use() from None
            return row
        try:  # PostgreSQL waits here for a concurrent claim of the key to commit or roll back
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            return None
        return row

    def _replay(
        self, held: IdempotencyKeyRow, route: str, digest: str, reload: Callable[[str], Created | None]
    ) -> Created:
        if held.route != route or held.fingerprint != digest:
            raise Conflict(
                f"This {HEADER} was used for another request in the last 24 hours; use a new key for "
                "a new request.",
                param=HEADER,
                code="idempotency_key_reused",
            )
        if not held.object_id:  # claimed in this very transaction: cannot happen across requests
            raise self._in_use()
        created = reload(held.object_id)
        if created is None:
            raise NotFound(
                f"The object created with this {HEADER}, {held.object_id}, has been deleted since.",
                param=HEADER,
                code="idempotency_object_deleted",
            )
        self.mark_replayed()
        return created

    def _in_use(self) -> Conflict:
        return Conflict(
            f"Another request with this {HEADER} is in progress; retry in a moment.",
            param=HEADER,
            code="idempotency_key_in_use",
        )


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Forget the keys older than `KEPT`; how many."""
    result = session.execute(
        delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def reload_owned(
    session: Session, model: type[Row], tenant_id: str, present: Callable[[Row], Created]
) -> Callable[[str], Created | None]:
    """A `reload` for `Idempotency.create`: the tenant's `model` row by id, as `present` shows it."""

    def reload(object_id: str) -> Created | None:
        row = find_owned(session, model, object_id, tenant_id=tenant_id)
        return None if row is None else present(row)

    return reload
