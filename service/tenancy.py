"""Tenant isolation and paging, in one place.

Every read of a tenant's objects goes through here:

- `get_owned` loads one object by id *within the caller's tenant*: another tenant's object is the
  same 404 as a missing one, never a 403 that would confirm it exists;
- `owned` starts a query of the tenant's objects, and `keyset_page` pages any query by a keyset
  (newest first by default), with `after` looked up *in that same query*: an id from another
  tenant, or outside the filtered list, is a 400 naming `after`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.errors import NotFound
from service.pagination import unknown_cursor

Row = TypeVar("Row")
Order = Literal["asc", "desc"]


def owned(model: type[Row], tenant_id: str) -> Select[Row]:
    """All of `tenant_id`'s rows of `model`, as a query to narrow further."""
    return select(model).where(_column(model, "tenant_id") == tenant_id)


def get_owned(
    session: Session,
    model: type[Row],
    object_id: str,
    *,
    tenant_id: str,
    not_found: Callable[[str], NotFound],
    where: Sequence[ColumnElement[bool]] = (),
) -> Row:
    """`model` row `object_id` if `tenant_id` owns it (and it meets `where`); `not_found(id)`
    otherwise, whoever else may own it."""
    row = find_owned(session, model, object_id, tenant_id=tenant_id, where=where)
    if row is None:
        raise not_found(object_id)
    return row


def find_owned(
    session: Session,
    model: type[Row],
    object_id: str,
    *,
    tenant_id: str,
    where: Sequence[ColumnElement[bool]] = (),
) -> Row | None:
    """`model` row `object_id` if `tenant_id` owns it (and it meets `where`), else None."""
    return session.scalar(owned(model, tenant_id).where(_column(model, "id") == object_id, *where))


def keyset_page(
    session: Session,
    query: Select[Row],
    *,
    keys: Sequence[InstrumentedAttribute[Any]],
    identity: InstrumentedAttribute[Any],
    after: str | None,
    limit: int,
    order: Order = "desc",
    matches: Callable[[Row], bool] | None = None,
) -> tuple[list[Row], bool]:
    """A page of `query` ordered by `keys` (the last one unique, e.g. created_at then id), at most
    `limit` rows, starting after the row whose `identity` is `after`; and whether more follow.
    `matches` filters rows in Python (for what SQL cannot portably express), scanning in batches."""
    if after is not None:
        cursor = session.scalar(query.where(identity == after))
        if cursor is None:
            raise unknown_cursor(after)
        query = query.where(_beyond(keys, [getattr(cursor, key.key) for key in keys], order))
    query = query.order_by(*(key.desc() if order == "desc" else key.asc() for key in keys))
    if matches is None:
        rows = list(session.scalars(query.limit(limit + 1)))
        return rows[:limit], len(rows) > limit
    found: list[Row] = []
    for row in session.scalars(query.execution_options(yield_per=500)):
        if matches(row):
            found.append(row)
            if len(found) > limit:
                break
    return found[:limit], len(found) > limit


def _beyond(
    keys: Sequence[InstrumentedAttribute[Any]], values: Sequence[Any], order: Order
) -> ColumnElement[bool]:
    """Rows after the cursor in (k1, k2, …) order: k1 beyond v1, or k1 = v1 and k2 beyond v2, …"""
    clauses = []
    for index, key in enumerate(keys):
        beyond = key < values[index] if order == "desc" else key > values[index]
        clauses.append(and_(*(k == v for k, v in zip(keys[:index], values[:index], strict=True)), beyond))
    return or_(*clauses)


def _column(model: type[Any], name: str) -> InstrumentedAttribute[Any]:
    column: InstrumentedAttribute[Any] = getattr(model, name)
    return column
