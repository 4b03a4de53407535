"""A clock the test moves by hand: job timelines advance only when the test says so."""

from __future__ import annotations

import asyncio

START = 1_750_000_000.0


class FakeClock:
    """``now()`` stands still until ``advance``; ``sleep`` records the wait and moves time by it."""

    def __init__(self, start: float = START) -> None:
        self.current = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += seconds
        await asyncio.sleep(0)
