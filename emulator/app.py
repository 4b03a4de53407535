"""The emulator's FastAPI app: its collaborators, routes, error rendering and background ticker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from emulator.clock import Clock, SystemClock
from emulator.embeddings.router import router as embeddings_router
from emulator.error_handlers import install_error_handlers
from emulator.faults.router import router as faults_router
from emulator.files.router import router as files_router
from emulator.inference.router import router as inference_router
from emulator.jobs.router import router as jobs_router
from emulator.middleware import EmulatorMiddleware
from emulator.models.router import router as models_router
from emulator.runtime import build_emulator
from emulator.settings import EmulatorSettings
from emulator.ticker import run_ticker


def create_app(
    settings: EmulatorSettings | None = None, *, clock: Clock | None = None, background_ticker: bool = True
) -> FastAPI:
    """A new emulator app with its own state under ``settings.data_dir``.

    ``clock`` defaults to real time. With ``background_ticker`` the app's lifespan advances jobs
    every ``tick_seconds``; a test driving a fake clock turns it off and calls ``emulator.ticker.tick``.
    """
    settings = settings or EmulatorSettings()
    emulator = build_emulator(settings, clock or SystemClock())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not background_ticker:
            yield
            return
        ticker = asyncio.create_task(run_ticker(emulator))
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
    routers = [files_router, jobs_router, models_router, inference_router, embeddings_router, faults_router]
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(
        EmulatorMiddleware,
        faults=emulator.faults,
        api_keys=[settings.api_key, *settings.other_api_keys],
        routes=[route for router in routers for route in router.routes],
        clock=emulator.clock,
    )
    return app
