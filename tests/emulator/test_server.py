"""The emulator over a real socket (uvicorn in a thread), as the rest of the service meets it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
import uvicorn

from emulator.app import create_app
from emulator.settings import EmulatorSettings
from tests.emulator.clock import FakeClock
from tests.emulator.conftest import API_KEY


@pytest.fixture
def base_url(emulator_settings: EmulatorSettings, clock: FakeClock) -> Iterator[str]:
    # The socket listens before uvicorn starts, so a client can connect at once: the kernel holds
    # the connection until uvicorn accepts it, and nothing has to poll for the server to be up.
    listener = socket.create_server(("127.0.0.1", 0))
    app = create_app(emulator_settings, clock=clock, background_ticker=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


def test_dropped_connection_is_a_connection_error_over_a_real_socket(base_url: str) -> None:
    # Given a real emulator told to drop the next request
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        http.post("/_emulator/faults", json={"drop_next": 1, "drop_phase": "before"})
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0)

    # When the SDK calls it, then it sees a connection error, and the next call works
    with pytest.raises(openai.APIConnectionError):
        sdk.models.list()
    assert sdk.models.list().data


def test_streamed_chunks_arrive_as_server_sent_events_paced_by_the_delay(
    base_url: str, clock: FakeClock
) -> None:
    # Given a real emulator with a per-chunk delay
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=base_url, headers=headers) as http:
        http.post("/_emulator/faults", json={"stream_chunk_delay_ms": 20})

        # When a chat completion is streamed
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "Hi there"}],
            },
        ) as response:
            lines = [line for line in response.iter_lines() if line]

    # Then it is an SSE stream of data lines ending with [DONE]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    # And each piece of text (every chunk but the role, the finish and [DONE]) waited 20 ms first
    assert clock.slept == [0.02] * (len(lines) - 3)
