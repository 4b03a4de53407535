"""Bookkeeping taken off a request's path and done in batches on the event loop.

What the proxy must count for each request (its usage, its Prometheus samples) costs a request
far more done one at a time (a lock, a price lookup, a dozen metric updates) than it does summed
with the others. So a request only appends what it has to say to a `LoopBatch` (a list append);
the batch is folded `delay_s` later by a callback on the same event loop, once for every request
that finished meanwhile, never inside any request. Everything runs on the loop's thread, so no
lock is taken; `drain` folds at once (shutdown, a scrape, tests) and must be called on that thread
too (or while no request is in flight). Outside a running loop (a script, a test calling in
directly) an item is folded as it is added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LoopBatch(Generic[T]):
    """Items folded together by `fold`, at most `delay_s` after the first one of a batch came."""

    __slots__ = ("_delay_s", "_fold", "_pending", "_timer_loop")

    def __init__(self, fold: Callable[[list[T]], None], *, delay_s: float) -> None:
        self._fold = fold
        self._delay_s = delay_s
        self._pending: list[T] = []
        self._timer_loop: asyncio.AbstractEventLoop | None = None  # where a fold is due, if one is

    def add(self, item: T) -> None:
        self._pending.append(item)
        due = self._timer_loop
        if due is None or due.is_closed():  # no fold due (a closed loop's never comes: a test's)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.drain()
                return
            self._timer_loop = loop
            loop.call_later(self._delay_s, self._due)

    def _due(self) -> None:
        self._timer_loop = None
        self.drain()

    def drain(self) -> None:
        """Fold everything added so far, now."""
        items, self._pending = self._pending, []
        if not items:
            return
        try:
            self._fold(items)
        except Exception:  # a fold that fails must not take the loop's callback down with it
            log.exception("folding %d deferred item(s) failed", len(items))

    def __len__(self) -> int:
        return len(self._pending)
