"""Reading token usage out of JSON answers and SSE streams, and hiding it from a stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.usage.capture import (
    TokenUsage,
    UsageTap,
    ask_for_stream_usage,
    hides_stream_usage,
    usage_from_json,
)

USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 0},
}


def event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def content(word: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": word}}],
    }


STREAM = [
    event({**content("Jonny"), "usage": None}),
    event({**content(" Whizbang"), "usage": None}),
    event({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}),
    b"data: [DONE]\n\n",
]


async def _from(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def relay(chunks: list[bytes], *, hide: bool) -> tuple[bytes, list[TokenUsage]]:
    """What the tap relays of `chunks`, and the usage it kept (none, or the one)."""
    tap = UsageTap(hide=hide)

    async def run() -> bytes:
        return b"".join([chunk async for chunk in tap.relay(_from(chunks))])

    relayed = asyncio.run(run())
    return relayed, [] if tap.usage is None else [tap.usage]


def test_usage_from_json_reads_the_envelopes_usage_even_with_nested_details() -> None:
    body = {"id": "x", "choices": [{"message": {"content": 'a "usage": {} inside text'}}], "usage": USAGE}

    assert usage_from_json(json.dumps(body).encode()) == TokenUsage(12, 5)


def test_usage_from_json_finds_the_envelopes_usage_when_a_later_usage_is_not_it() -> None:
    # the last `"usage"` of the bytes is a string value, then a key holding null: neither is the usage
    body = {"usage": USAGE, "choices": [{"message": {"name": "usage"}}], "extra": {"usage": None}}

    assert usage_from_json(json.dumps(body).encode()) == TokenUsage(12, 5)


@pytest.mark.parametrize("body", [b'{"id": "x"}', b'{"usage": null}', b"not json"])
def test_usage_from_json_without_usage_is_none(body: bytes) -> None:
    assert usage_from_json(body) is None


def test_embeddings_usage_has_no_output_tokens() -> None:
    assert usage_from_json(b'{"data": [], "usage": {"prompt_tokens": 8, "total_tokens": 8}}') == TokenUsage(
        8, 0
    )


def test_a_hidden_streams_usage_is_reported_and_the_stream_is_as_if_never_asked() -> None:
    relayed, seen = relay(STREAM, hide=True)

    assert seen == [TokenUsage(12, 5)]
    assert relayed == event(content("Jonny")) + event(content(" Whizbang")) + b"data: [DONE]\n\n"


def test_a_stream_that_asked_for_usage_is_relayed_unchanged() -> None:
    relayed, seen = relay(STREAM, hide=False)

    assert seen == [TokenUsage(12, 5)]
    assert relayed == b"".join(STREAM)


def test_an_event_split_across_reads_is_put_back_together_before_it_is_looked_at() -> None:
    whole = b"".join(STREAM)
    cut = whole.index(b'"usage": {') + 4
    relayed, seen = relay([whole[:cut], whole[cut:]], hide=True)

    assert seen == [TokenUsage(12, 5)]
    assert b'"usage"' not in relayed
    assert relayed.endswith(b"data: [DONE]\n\n")


def test_usage_on_a_content_chunk_keeps_the_content_when_hidden() -> None:
    last = event({**content("!"), "usage": USAGE})

    relayed, seen = relay([last], hide=True)

    assert seen == [TokenUsage(12, 5)]
    assert json.loads(relayed.removeprefix(b"data: ")) == content("!")


def test_asking_for_usage_splices_stream_options_into_the_body() -> None:
    body = b'{"model": "m", "stream": true}'

    assert json.loads(ask_for_stream_usage(body)) == {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_asking_for_usage_keeps_the_callers_other_stream_options() -> None:
    body = b'{"model": "m", "stream": true, "stream_options": {"include_obfuscation": false}}'

    assert json.loads(ask_for_stream_usage(body))["stream_options"] == {
        "include_obfuscation": False,
        "include_usage": True,
    }


@pytest.mark.parametrize(
    ("body", "hidden"),
    [
        ({"stream": True}, True),
        ({"stream": True, "stream_options": {"include_usage": False}}, True),
        ({"stream": True, "stream_options": {"include_usage": True}}, False),
    ],
)
def test_usage_is_hidden_unless_the_caller_asked_for_it(body: dict[str, Any], hidden: bool) -> None:
    assert hides_stream_usage(body) is hidden
