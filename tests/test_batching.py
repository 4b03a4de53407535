"""LoopBatch: what a request defers is folded once per batch, on the loop, soon and never lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from service.batching import LoopBatch


def test_items_added_on_a_loop_are_folded_together_after_the_delay() -> None:
    folded: list[list[int]] = []
    batch: LoopBatch[int] = LoopBatch(folded.append, delay_s=0.02)

    async def run() -> tuple[list[list[int]], list[list[int]]]:
        for item in range(5):
            batch.add(item)
        before = list(folded)
        await asyncio.sleep(0.1)
        return before, list(folded)

    before, after = asyncio.run(run())

    assert before == []  # nothing is done inside the requests that add
    assert after == [[0, 1, 2, 3, 4]]
    assert len(batch) == 0


def test_drain_folds_at_once_and_the_pending_timer_then_finds_nothing_twice() -> None:
    folded: list[list[str]] = []
    batch: LoopBatch[str] = LoopBatch(folded.append, delay_s=0.02)

    async def run() -> None:
        batch.add("a")
        batch.drain()
        batch.add("b")
        await asyncio.sleep(0.1)

    asyncio.run(run())

    assert folded == [["a"], ["b"]]


def test_a_fold_that_fails_is_logged_and_later_batches_still_fold(caplog: pytest.LogCaptureFixture) -> None:
    folded: list[list[int]] = []

    def fold(items: list[int]) -> None:
        if items == [1]:
            raise ValueError("boom")
        folded.append(items)

    batch: LoopBatch[int] = LoopBatch(fold, delay_s=0.01)

    async def run() -> None:
        batch.add(1)
        await asyncio.sleep(0.05)
        batch.add(2)
        await asyncio.sleep(0.05)

    with caplog.at_level(logging.ERROR, logger="service.batching"):
        asyncio.run(run())

    assert folded == [[2]]
    assert "folding 1 deferred item(s) failed" in caplog.text


def test_outside_an_event_loop_an_item_is_folded_as_it_is_added() -> None:
    folded: list[list[int]] = []
    batch: LoopBatch[int] = LoopBatch(folded.append, delay_s=60)

    batch.add(7)

    assert folded == [[7]]


def test_items_added_after_the_loop_of_a_due_fold_closed_are_folded_on_the_next_loop() -> None:
    folded: list[list[int]] = []
    batch: LoopBatch[int] = LoopBatch(folded.append, delay_s=0.05)

    async def add_and_leave(item: int) -> None:
        batch.add(item)  # the loop ends before the fold is due: that fold never comes

    async def add_and_wait(item: int) -> None:
        batch.add(item)
        await asyncio.sleep(0.15)

    asyncio.run(add_and_leave(1))
    asyncio.run(add_and_wait(2))

    assert folded == [[1, 2]]
