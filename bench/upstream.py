"""A fast fake OpenAI-compatible upstream for `bench/proxy.py`: raw asyncio, httptools and uvloop,
so that it costs far less per request than anything it is measured against.

`POST …/chat/completions` answers after the delay the body asks for (`"bench_delay_ms": N`, found
by a byte search, not by parsing), with a chat completion, or with `"stream": true` with an SSE
stream of `STREAM_CHUNKS` chunks and `[DONE]` (chunked, the first chunk after the delay).

Run: `python -m bench.upstream PORT`.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import cast

import httptools
import uvloop

STREAM_CHUNKS = 20
_DELAY = re.compile(rb'"bench_delay_ms":\s*(\d+)')
_STREAM = re.compile(rb'"stream":\s*true')
_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello!"}}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
).encode()
_JSON_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
    b"content-length: " + str(len(_COMPLETION)).encode() + b"\r\n\r\n" + _COMPLETION
)
_CHUNK = (
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}],
        }
    ).encode()
    + b"\n\n"
)
_STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


_FIRST_CHUNK = _STREAM_HEAD + _chunked(_CHUNK)
_REST = _chunked(_CHUNK) * (STREAM_CHUNKS - 1) + _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"


class _Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._body)
        self._body = []
        match = _DELAY.search(body)
        delay = int(match.group(1)) / 1000 if match else 0.0
        stream = _STREAM.search(body) is not None
        loop = asyncio.get_running_loop()
        if delay:
            loop.call_later(delay, self._answer, stream)
        else:
            self._answer(stream)

    def _answer(self, stream: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not stream:
            transport.write(_JSON_RESPONSE)
            return
        transport.write(_FIRST_CHUNK)
        transport.write(_REST)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
