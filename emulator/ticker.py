"""Background progress: while the app runs under a lifespan, jobs advance even if nobody asks.

Every route also brings jobs up to date before it answers, so the ticker only matters to a job
that nobody polls: it still finishes on time. Tests that drive a fake clock leave the ticker off
and call ``tick`` themselves.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from emulator.runtime import Emulator
from emulator.webhooks import send_due

logger = logging.getLogger(__name__)


async def tick(emulator: Emulator) -> None:
    """Advance every active job to the clock's present, off the event loop; a failure is logged."""
    try:
        await asyncio.to_thread(emulator.engine.advance_all)
    except Exception:  # keep ticking; the next request retries the same work and reports it
        logger.exception("advancing fine-tuning jobs failed")


async def send_webhooks(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """Post the due webhooks about jobs; a failure is logged and retried at the next tick."""
    try:
        await send_due(emulator, client)
    except Exception:
        logger.exception("sending webhooks failed")


async def run_ticker(emulator: Emulator) -> None:
    """``tick`` every ``tick_seconds`` of the emulator's clock, and send the webhooks that are
    due, until cancelled."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        while True:
            await emulator.clock.sleep(emulator.settings.tick_seconds)
            await tick(emulator)
            await send_webhooks(emulator, client)
