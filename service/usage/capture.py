"""Token usage read from what the provider sent, touching as few bytes as possible.

- A JSON answer: only the `"usage": {...}` object is found (a regular expression over the bytes) and
  parsed, never the whole body.
- A stream: the provider sends usage in a last chunk when the request asks for
  `stream_options.include_usage`. When the caller did not ask, the proxy asks anyway
  (`ask_for_stream_usage`) and `UsageTap` takes that chunk (and the `"usage": null` the provider
  then adds to every other chunk) out again, so the caller receives what it would have without it.
  A chunk is looked at only when it contains `"usage"`.

SSE events split across two reads are put back together before they are looked at: a read that
does not end at an event boundary keeps its unfinished tail until the next read completes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})')
_USAGE_FILLED = re.compile(rb'"usage"\s*:\s*\{')
_NULL_USAGE = (b', "usage": null', b',"usage":null')
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n")
_ASK_FOR_USAGE = b'"stream_options":{"include_usage":true},'
MAX_HELD_BYTES = 1 << 16  # a tail longer than this is no SSE event worth waiting for: pass it on


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int


def parse_usage(usage: object) -> TokenUsage | None:
    """OpenAI's `usage` object (chat, completions, embeddings) as input/output tokens."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return TokenUsage(prompt, completion)


def usage_from_json(content: bytes) -> TokenUsage | None:
    """The usage of a JSON answer (its last top-level-looking `"usage": {...}`), None without one."""
    last = content.rfind(b'"usage"')
    if last < 0:
        return None
    # The envelope's usage comes last in OpenAI's answers: tried first, without scanning the body.
    found = _USAGE_OBJECT.match(content, last)
    if found is None:  # the last `"usage"` is something else (a string value, a null): look again
        for found in _USAGE_OBJECT.finditer(content):  # noqa: B007  (the last one is the envelope's)
            pass
        if found is None:
            return None
    try:
        return parse_usage(json.loads(found.group(1).decode()))  # UTF-8 (RFC 8259): no detection
    except ValueError:  # UnicodeDecodeError included
        return None


def hides_stream_usage(body: dict[str, Any]) -> bool:
    """Whether the caller's stream must have the usage taken out (it did not ask for it)."""
    options = body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_usage") is True)


def ask_for_stream_usage(content: bytes) -> bytes:
    """The streaming request body (a checked JSON object) that makes the provider report usage."""
    if b'"stream_options"' not in content:
        start = content.index(b"{") + 1  # cheaper to splice than to encode the body again
        return content[:start] + _ASK_FOR_USAGE + content[start:]
    body = json.loads(content)
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return content
    body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return json.dumps(body, ensure_ascii=False).encode()


class UsageTap:
    """Relays a stream's chunks, keeping the usage it reports (`usage`, the last one seen);
    `hide` takes the usage out of what is relayed.

    `feed` takes each chunk as it comes and returns what to send on (possibly `b""`: an event's
    unfinished start waits for its end), `end` what is left when the stream ends: a plain function
    per chunk, so the relay's one loop calls it without another async generator in between."""

    __slots__ = ("usage", "_hide", "_held")

    def __init__(self, *, hide: bool) -> None:
        self.usage: TokenUsage | None = None
        self._hide = hide
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._held:
            chunk, self._held = self._held + chunk, b""
        if not chunk.endswith(_EVENT_ENDS) and len(chunk) < MAX_HELD_BYTES:
            cut = max(chunk.rfind(b"\n\n") + 2, chunk.rfind(b"\r\n\r\n") + 4, 0)
            chunk, self._held = chunk[:cut], chunk[cut:]
        if b'"usage"' in chunk:
            chunk = self._scan(chunk)
        return chunk

    def end(self) -> bytes:
        held, self._held = self._held, b""
        return self._scan(held) if b'"usage"' in held else held

    async def relay(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        async for chunk in chunks:
            chunk = self.feed(chunk)
            if chunk:
                yield chunk
        rest = self.end()
        if rest:
            yield rest

    def _scan(self, chunk: bytes) -> bytes:
        if _USAGE_FILLED.search(chunk) is None:  # only `"usage": null`s
            return self._without_nulls(chunk) if self._hide else chunk
        separator = b"\r\n\r\n" if b"\r\n\r\n" in chunk else b"\n\n"
        events = chunk.split(separator)
        kept = [self._event(event) for event in events]
        return separator.join(event for event in kept if event is not None) if self._hide else chunk

    def _event(self, event: bytes) -> bytes | None:
        """The event as relayed (None: dropped), reporting its usage."""
        if _USAGE_FILLED.search(event) is None:
            return self._without_nulls(event) if self._hide and b'"usage"' in event else event
        data = event.strip().removeprefix(b"data:").strip()
        try:
            body = json.loads(data)
        except ValueError:
            return event
        usage = parse_usage(body.get("usage")) if isinstance(body, dict) else None
        if usage is None:
            return event
        self.usage = usage
        if not self._hide:
            return event
        if not body.get("choices"):
            return None  # the usage-only chunk the caller did not ask for
        del body["usage"]  # a provider that reports usage on a content chunk: keep the content
        return b"data: " + json.dumps(body, ensure_ascii=False).encode()

    @staticmethod
    def _without_nulls(chunk: bytes) -> bytes:
        for null in _NULL_USAGE:
            chunk = chunk.replace(null, b"")
        return chunk
