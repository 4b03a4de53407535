"""The emulator's FastAPI app: its collaborators, routes, error rendering and background progress task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from emulator.error_handlers import install_error_handlers
from emulator.faults.router import router as faults_router
from emulator.files.router import router as files_router
from emulator.inference.router import router as inference_router
from emulator.jobs.router import router as jobs_router
from emulator.middleware import EmulatorMiddleware
from emulator.models.router import router as models_router
from emulator.runtime import Emulator, build_emulator
from emulator.settings import EmulatorSettings

logger = logging.getLogger(__name__)


async def _advance_forever(emulator: Emulator) -> None:
    while True:
        await asyncio.sleep(emulator.settings.tick_seconds)
        try:
            await run_in_threadpool(emulator.engine.advance_all)
        except Exception:  # keep ticking; the next request retries the same work and reports it
            logger.exception("advancing fine-tuning jobs failed")


def create_app(settings: EmulatorSettings | None = None) -> FastAPI:
    """A new emulator app with its own state under ``settings.data_dir``."""
    settings = settings or EmulatorSettings()
    emulator = build_emulator(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_advance_forever(emulator))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    app = FastAPI(
        title="finetune-manager local provider",
        description="An OpenAI-compatible emulator of files, fine-tuning, models and inference.",
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    routers = [files_router, jobs_router, models_router, inference_router, faults_router]
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(
        EmulatorMiddleware,
        faults=emulator.faults,
        api_key=settings.api_key,
        routes=[route for router in routers for route in router.routes],
    )
    return app
