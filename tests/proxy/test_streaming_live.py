"""Over real sockets (uvicorn on 127.0.0.1), a stream is relayed as the provider sends it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from service.providers.registry import ProviderConfig
from service.runtime import Runtime
from tests.proxy.fakes import FT_MODEL, UPSTREAM_KEY, WORDS, FakeUpstream, add_fine_tuned_model

CHUNK_DELAY_S = 0.3


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free port of 127.0.0.1; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def slow_upstream(runtime: Runtime) -> Iterator[FakeUpstream]:
    """A provider on its own uvicorn that waits CHUNK_DELAY_S between SSE chunks."""
    fake = FakeUpstream(chunk_delay_s=CHUNK_DELAY_S)
    with serving(fake.app) as url:
        runtime.providers.configs["local"] = ProviderConfig("local", f"{url}/v1", UPSTREAM_KEY)
        yield fake


@pytest.fixture
def live_caller(app: FastAPI, tenant_key: str, slow_upstream: FakeUpstream) -> Iterator[openai.OpenAI]:
    """The SDK talking to our app on a real uvicorn server."""
    with serving(app) as url, httpx2.Client(trust_env=False) as http:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key=tenant_key, http_client=http, max_retries=0)


def test_each_chunk_reaches_the_client_before_the_provider_sends_the_next(
    runtime: Runtime, slow_upstream: FakeUpstream, live_caller: openai.OpenAI
) -> None:
    # Given a fine-tuned model on a provider that streams slowly
    add_fine_tuned_model(runtime)

    # When the caller streams an answer, noting when each chunk arrives
    received_at: list[float] = []
    text: list[str] = []
    for chunk in live_caller.chat.completions.create(
        model=FT_MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
    ):
        received_at.append(time.monotonic())
        text.append(chunk.choices[0].delta.content or "")

    # Then the whole answer came, and every chunk arrived before the provider sent the next one:
    # the proxy relays as it goes instead of buffering the stream
    sent_at = slow_upstream.chunk_sent_at
    assert "".join(text) == "".join(WORDS)
    assert len(received_at) == len(sent_at)
    assert all(received_at[i] < sent_at[i + 1] for i in range(len(sent_at) - 1))
    assert received_at[0] < sent_at[-1]


def test_a_client_going_away_mid_stream_releases_the_provider_stream(
    runtime: Runtime, slow_upstream: FakeUpstream, live_caller: openai.OpenAI
) -> None:
    # Given a stream in progress
    add_fine_tuned_model(runtime)
    stream = live_caller.chat.completions.create(
        model=FT_MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    next(iter(stream))

    # When the caller hangs up after the first chunk
    stream.close()

    # Then the proxy closes its provider stream instead of reading it to the end
    assert slow_upstream.stream_abandoned.wait(5 * CHUNK_DELAY_S * len(WORDS))
    assert not slow_upstream.stream_finished.is_set()
    assert len(slow_upstream.chunk_sent_at) < len(WORDS) + 1
