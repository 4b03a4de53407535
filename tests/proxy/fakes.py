"""A fake OpenAI-compatible provider for proxy and models tests, and helpers to wire it in.

`FakeUpstream.app` answers `/v1/chat/completions` and `/v1/completions` (JSON or SSE) and
`DELETE /v1/models/{id}` with canned OpenAI-shaped objects, records what it received, and can be
told to fail (`fail_with`, or `failing[model]` for one model only), to wait before answering
(`answer_delay_s`) or to drop a stream's connection after some chunks (`break_after`). It can
sleep between SSE chunks and records when it sent each one. Like OpenAI it reports token usage in
a JSON answer's `usage`, and in a stream's last chunk when asked with `stream_options.include_usage`
(every other chunk then carrying `"usage": null`); each usage it reported is kept in
`reported_usage`.

The proxy's relay client talks HTTP over sockets, so `attach` serves the fake on a real loopback
port: one uvicorn server for the whole test run, answering with whichever fake was attached last.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import service as auth
from service.db import session_scope
from service.models.models import FineTunedModelRow
from service.providers.registry import ProviderConfig
from service.runtime import Runtime

UPSTREAM_KEY = "sk-upstream"
FT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme:support:abc123"
WORDS = ["Jonny", " Whizbang", " was", " born", " on", " February", " 22,", " 1957."]
ANSWER = "".join(WORDS)


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    authorization: str | None
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Failure:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def openai_error(status: int, message: str, type_: str, code: str | None, **headers: str) -> Failure:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Failure(status, json.dumps(body).encode(), headers)


class FakeUpstream:
    def __init__(self, *, chunk_delay_s: float = 0.0, chunks: list[str] | None = None) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.words = chunks or WORDS
        self.answer_delay_s = 0.0
        self.break_after: int | None = None  # a stream's connection drops after this many chunks
        self.received: list[Received] = []
        self.fail_with: Failure | None = None
        self.failing: dict[str, Failure] = {}  # by the requested model
        self.deleted: set[str] = set()
        self.chunk_sent_at: list[float] = []  # time.monotonic() as each SSE chunk was handed on
        self.stream_finished = threading.Event()
        self.stream_abandoned = threading.Event()  # the reader went away before the last chunk
        self.reported_usage: list[dict[str, int]] = []
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            return await self._answer(request, chat=True)

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            return await self._answer(request, chat=False)

        @app.delete("/v1/models/{model:path}")
        async def delete(model: str, request: Request) -> Response:
            self._record(request, None)
            if self.fail_with is not None:
                return self._failure()
            if model in self.deleted:
                return self._failure(
                    openai_error(404, "No such model.", "invalid_request_error", "model_not_found")
                )
            self.deleted.add(model)
            return JSONResponse({"id": model, "object": "model", "deleted": True})

        return app

    def _record(self, request: Request, body: dict[str, Any] | None) -> None:
        headers = dict(request.headers)
        self.received.append(
            Received(request.method, request.url.path, headers.get("authorization"), headers, body)
        )

    def _failure(self, failure: Failure | None = None) -> Response:
        chosen = failure or self.fail_with
        assert chosen is not None
        return Response(chosen.body, chosen.status, headers=chosen.headers, media_type="application/json")

    async def _answer(self, request: Request, *, chat: bool) -> Response:
        body = await request.json()
        self._record(request, body)
        if self.answer_delay_s:
            await asyncio.sleep(self.answer_delay_s)
        if self.fail_with is not None:
            return self._failure()
        model = body["model"]
        if model in self.failing:
            return self._failure(self.failing[model])
        usage = self._usage(body)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            reported = usage if options.get("include_usage") else None
            return StreamingResponse(
                self._chunks(model, chat=chat, usage=reported), media_type="text/event-stream"
            )
        self.reported_usage.append(usage)
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": ANSWER},
            }
            return JSONResponse(
                {**_envelope("chat.completion", model, choice), "usage": usage},
                headers={"x-request-id": "req_up"},
            )
        choice = {"index": 0, "finish_reason": "stop", "text": ANSWER, "logprobs": None}
        return JSONResponse({**_envelope("text_completion", model, choice), "usage": usage})

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Tokens as a provider would count them: about one per 4 characters of the prompt, one per
        word of the answer."""
        prompt = len(json.dumps(body.get("messages", body.get("prompt", "")))) // 4 + 1
        completion = len(self.words)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def _chunks(
        self, model: str, *, chat: bool, usage: dict[str, int] | None = None
    ) -> AsyncIterator[bytes]:
        finished = False
        try:
            for index, word in enumerate([*self.words, None]):
                if index == self.break_after:
                    raise StreamBrokeOff  # uvicorn then closes the connection mid-response
                if index and self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
                if chat:
                    delta = {"content": word} if word is not None else {}
                    choice: dict[str, Any] = {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": None if word is not None else "stop",
                    }
                    event = _envelope("chat.completion.chunk", model, choice)
                else:
                    choice = {"index": 0, "text": word or "", "finish_reason": None if word else "stop"}
                    event = _envelope("text_completion", model, choice)
                if usage is not None:
                    event["usage"] = None
                self.chunk_sent_at.append(time.monotonic())
                yield f"data: {json.dumps(event)}\n\n".encode()
            if usage is not None:
                self.reported_usage.append(usage)
                last = {
                    **_envelope("chat.completion.chunk" if chat else "text_completion", model, {}),
                    "usage": usage,
                }
                last["choices"] = []
                yield f"data: {json.dumps(last)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            (self.stream_finished if finished else self.stream_abandoned).set()

    def calls(self, path: str) -> list[Received]:
        return [call for call in self.received if call.path == path]


class StreamBrokeOff(Exception):
    """Raised by the fake mid-stream so that the server drops the connection."""


def _envelope(object_: str, model: str, choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": object_,
        "created": 1_700_000_000,
        "model": model,
        "choices": [choice],
    }


class _Loopback:
    """An ASGI app that hands each request to the fake attached last."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.target is not None, "no fake upstream attached"
        await self.target(scope, receive, send)


@functools.cache
def _loopback() -> tuple[_Loopback, str]:
    """The test run's loopback server (started on first use, a daemon thread) and its base URL."""
    app = _Loopback()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the fake upstream stopped"
        assert time.monotonic() < deadline, "the fake upstream did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return app, f"http://127.0.0.1:{port}"


def serve_on_loopback(app: ASGIApp) -> str:
    """Make the loopback server answer with `app`; its base URL."""
    loopback, url = _loopback()
    loopback.target = app
    return url


def point_provider_at(runtime: Runtime, name: str, base_url: str) -> None:
    """Configure provider `name` at `base_url` (`…/v1`) with the fake's key, for the proxy's relay."""
    runtime.providers.configs[name] = ProviderConfig(name, base_url, UPSTREAM_KEY)
    runtime.providers._relays.pop(name, None)  # made again from the new configuration


def nothing_listening_url() -> str:
    """A loopback base URL where connections are refused (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def attach(runtime: Runtime, upstream: FakeUpstream) -> TestClient:
    """Point the registry's `local` provider at `upstream`: the proxy's relay over loopback, the
    sync SDK client in process; returns the sync side's HTTP client, for the caller to close."""
    point_provider_at(runtime, "local", serve_on_loopback(upstream.app) + "/v1")
    sync_http = TestClient(upstream.app)
    runtime.providers._sync["local"] = openai.OpenAI(
        base_url="http://upstream/v1", api_key=UPSTREAM_KEY, http_client=sync_http, max_retries=0
    )
    return sync_http


def add_fine_tuned_model(runtime: Runtime, *, tenant: str = "acme", model: str = FT_MODEL) -> str:
    """Record that `tenant` owns `model` on the local provider (as a succeeded job would)."""
    with session_scope(runtime.sessions) as session:
        tenant_row = auth.get_or_create_tenant(session, tenant)
        session.add(
            FineTunedModelRow(
                id=model, tenant_id=tenant_row.id, provider="local", base_model="gpt-4o-mini-2024-07-18"
            )
        )
    return model
