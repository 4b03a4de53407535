"""Where the emulator reads the time and waits.

Job timelines, timestamps, injected latency, the pause between streamed chunks and the background
ticker all go through one ``Clock``, handed to ``create_app``. The default is the system clock;
tests pass a fake one that they move forward by hand, so nothing in them waits for real time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """The time source of one emulator."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` before carrying on."""
        ...


class SystemClock:
    """Real time: ``time.time`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
