"""Webhook retries through real processes (`ftm dev`: the API, a worker, beat): a receiver that
fails three times and then succeeds gets the same `webhook-id` on every attempt, each attempt
verifies with the SDK's `unwrap`, and the delivery log through the API shows every attempt.
The retry schedule runs a thousand times faster (`FTM_WEBHOOK_RETRY_DELAY_SCALE`), so the four
attempts take the beat's sweeps (every 5 s) rather than half an hour."""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import Received, Stack, _e2e_redis_url, run_stack
from tests.factories import jonny_dataset

pytestmark = pytest.mark.e2e

FAILURES = 3


@pytest.fixture(scope="module")
def fast_retry_stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Stack]:
    with run_stack(
        tmp_path_factory.mktemp("retries"),
        redis_url=_e2e_redis_url(),
        database_url=database_url,
        extra_env={"FTM_WEBHOOK_RETRY_DELAY_SCALE": "0.001"},
    ) as running:
        yield running


class FailingReceiver:
    """Answers 500 ("not yet") `failures` times, then 204; every request lands on `requests`."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: queue.Queue[Received] = queue.Queue()
        self.url = ""


@pytest.fixture
def failing_receiver() -> Iterator[FailingReceiver]:
    state = FailingReceiver(FAILURES)
    seen = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal seen
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                seen += 1
                failing = seen <= state.failures
            state.requests.put(Received({k.lower(): v for k, v in self.headers.items()}, body))
            answer = b"not yet" if failing else b""
            self.send_response(500 if failing else 204)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _deliveries(stack: Stack, endpoint_id: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{stack.base_url}/webhook_endpoints/{endpoint_id}/deliveries",
        headers={"Authorization": f"Bearer {stack.admin_key}"},
    )
    response.raise_for_status()
    data: list[dict[str, object]] = response.json()["data"]
    return data


def test_a_receiver_failing_three_times_gets_the_same_verified_event_and_the_log_shows_every_attempt(
    fast_retry_stack: Stack, failing_receiver: FailingReceiver, tmp_path: Path
) -> None:
    stack = fast_retry_stack
    client = openai.OpenAI(base_url=stack.base_url, api_key=stack.admin_key, max_retries=0)
    endpoint = client.webhooks.create(
        name="flaky",
        url=failing_receiver.url,
        event_types=["file.processed"],  # type: ignore[list-item]
    )

    uploaded = client.files.create(file=("jonny.jsonl", io.BytesIO(jonny_dataset())), purpose="fine-tune")
    received = [failing_receiver.requests.get(timeout=90) for _ in range(FAILURES + 1)]
    for request in received:  # raises unless the signature verifies
        client.webhooks.unwrap(request.body, request.headers, secret=endpoint.signing_secret)
    log = _wait_for_succeeded(stack, endpoint.id)

    [delivery] = log
    webhook_ids = {r.headers["webhook-id"] for r in received}
    assert webhook_ids == {delivery["event_id"]}
    bodies = [json.loads(r.body) for r in received]
    assert {(body["id"], body["type"], body["data"]["id"]) for body in bodies} == {
        (delivery["event_id"], "file.processed", uploaded.id)
    }
    attempts = delivery["attempts"]
    assert isinstance(attempts, list)
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 204]
    assert [a["response_body"] for a in attempts] == ["not yet", "not yet", "not yet", ""]
    assert delivery["status"] == "succeeded"
    assert failing_receiver.requests.empty()  # nothing more once it succeeded


def _wait_for_succeeded(stack: Stack, endpoint_id: str) -> list[dict[str, object]]:
    """The log once the last attempt is recorded (it is stored after the receiver answered)."""
    for _ in range(240):
        log = _deliveries(stack, endpoint_id)
        if log and log[0]["status"] == "succeeded":
            return log
        threading.Event().wait(0.25)
    raise AssertionError(f"the delivery did not succeed; log: {log}")
