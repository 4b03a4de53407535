"""Cursor pagination shared by every list route: OpenAI's `{"object":"list","data":[…],"has_more"}`
with `after=<id of the last item seen>`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Literal, Self, TypeVar

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


def check_limit(limit: int, *, maximum: int) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit must be between 1 and {maximum}.", param="limit")
    return limit
