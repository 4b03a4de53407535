"""Cursor pagination shared by every list route: OpenAI's `{"object":"list","data":[…],"has_more"}`
with `after=<id of the last item seen>`.

Every paged list validates its parameters the same way: `limit` within the route's range (a
`Query(ge=1, le=…)`, so the OpenAPI document shows it), `after` a non-empty id of an item of that
list (an id it does not hold is a 400 naming `after`, see `service.tenancy.keyset_page`), and, where a list can be
read both ways, `order` `asc` or `desc`. Each is a 400 naming the parameter otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, Literal, Self, TypeVar

from fastapi import Query
from pydantic import BaseModel

from service.errors import InvalidRequest

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def of(cls, data: Sequence[Item], has_more: bool) -> Self:
        ids = [getattr(item, "id", None) for item in data]
        return cls(
            data=list(data),
            has_more=has_more,
            first_id=ids[0] if ids else None,
            last_id=ids[-1] if ids else None,
        )


After = Annotated[
    str | None,
    Query(
        min_length=1, description="The id of the last item of the previous page; the page starts after it."
    ),
]
Order = Annotated[Literal["asc", "desc"], Query(description="`desc` (newest first) or `asc`.")]


def unknown_cursor(after: str) -> InvalidRequest:
    return InvalidRequest(
        f"No item with id '{after}' in this list; `after` takes the id of an item of the previous page.",
        param="after",
    )
