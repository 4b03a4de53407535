"""Routes of inference: ``/v1/chat/completions`` and ``/v1/completions`` (with ``stream=true``).

Replies come from ``responder``; token usage is counted with the model's real encoding.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .context import CurrentEmulator, Emulator, advance_jobs
from .errors import InvalidRequest, NotFound
from .registry import ServedModel
from .responder import answer
from .store import new_id
from .streaming import Choice, stream_chunks

router = APIRouter(prefix="/v1", tags=["inference"], dependencies=[Depends(advance_jobs)])
FINGERPRINT = "fp_emulator"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Message(_Open):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(_Open):
    include_usage: bool = False


class _Generation(_Open):
    model: str
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    stop: str | list[str] | None = None


class ChatRequest(_Generation):
    """Body of ``POST /v1/chat/completions`` (other OpenAI parameters are accepted and ignored)."""

    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None


class CompletionRequest(_Generation):
    """Body of ``POST /v1/completions``."""

    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: Annotated[int, Field(ge=0)] | None = 16
    echo: bool = False


def _reply(
    emulator: Emulator, served: ServedModel, question: str, max_tokens: int | None, stop: Any
) -> tuple[str, str, int]:
    """(text, finish_reason, completion tokens) of one reply."""
    text, finish = answer(question, served.base.kind, served.memory), "stop"
    for sequence in [stop] if isinstance(stop, str) else stop or []:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
    tokens = emulator.tokenizers.encode(served.base.encoding, text)
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        text, finish = emulator.tokenizers.decode(served.base.encoding, tokens), "length"
    return text, finish, len(tokens)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _check_context(served: ServedModel, prompt_tokens: int, max_tokens: int | None, param: str) -> None:
    limit = served.base.context_window
    if prompt_tokens + (max_tokens or 0) > limit:
        raise InvalidRequest(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + (max_tokens or 0)} tokens ({prompt_tokens} in the {param}). "
            "Please reduce the length of the messages or completion.",
            param=param,
            code="context_length_exceeded",
        )


def _respond(
    emulator: Emulator,
    req: _Generation,
    head: dict[str, Any],
    choices: list[Choice],
    usage: dict[str, Any],
    chat: bool,
) -> dict[str, Any] | StreamingResponse:
    if req.stream:
        include_usage = req.stream_options is not None and req.stream_options.include_usage
        body = stream_chunks(
            head=head,
            choices=choices,
            usage=usage if include_usage else None,
            chat=chat,
            delay_s=emulator.faults.snapshot().stream_chunk_delay_ms / 1000,
        )
        return StreamingResponse(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    rendered: list[dict[str, Any]]
    if chat:
        rendered = [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for c in choices
        ]
    else:
        rendered = [
            {"text": c.text, "index": c.index, "logprobs": None, "finish_reason": c.finish_reason}
            for c in choices
        ]
    return {**head, "choices": rendered, "usage": usage}


@router.post("/chat/completions", response_model=None)
def chat_completions(emulator: CurrentEmulator, body: ChatRequest) -> dict[str, Any] | StreamingResponse:
    """A chat completion from a base or fine-tuned chat model."""
    served = emulator.registry.resolve(body.model)
    if served.base.kind != "chat":
        raise NotFound(
            "This is not a chat model and thus not supported in the v1/chat/completions endpoint. "
            "Did you mean to use v1/completions?",
            param="model",
        )
    encoding = served.base.encoding
    messages = [(m.role, m.text(), m.name) for m in body.messages]
    prompt_tokens = emulator.tokenizers.count_chat(encoding, messages)
    max_tokens = body.max_completion_tokens or body.max_tokens
    _check_context(served, prompt_tokens, max_tokens, "messages")
    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
    text, finish, tokens = _reply(emulator, served, question, max_tokens, body.stop)
    choices = [Choice(i, text, finish) for i in range(body.n)]
    object_type = "chat.completion.chunk" if body.stream else "chat.completion"
    head = {
        "id": new_id("chatcmpl-", 29),
        "object": object_type,
        "created": int(time.time()),
        "model": served.name,
        "system_fingerprint": FINGERPRINT,
        "service_tier": "default",
    }
    return _respond(emulator, body, head, choices, _usage(prompt_tokens, tokens * body.n), chat=True)


@router.post("/completions", response_model=None)
def completions(emulator: CurrentEmulator, body: CompletionRequest) -> dict[str, Any] | StreamingResponse:
    """A legacy text completion from babbage-002 / davinci-002 or a model fine-tuned from them."""
    served = emulator.registry.resolve(body.model)
    if served.base.kind != "completion":
        raise NotFound(
            "This is a chat model and not supported in the v1/completions endpoint. "
            "Did you mean to use v1/chat/completions?",
            param="model",
        )
    encoding = served.base.encoding
    raw = body.prompt
    if isinstance(raw, str):
        prompts = [raw]
    elif raw and all(isinstance(p, int) for p in raw):
        prompts = [emulator.tokenizers.decode(encoding, [int(p) for p in raw if isinstance(p, int)])]
    else:
        prompts = [
            p if isinstance(p, str) else emulator.tokenizers.decode(encoding, p)
            for p in raw
            if not isinstance(p, int)
        ]
    prompt_tokens = sum(emulator.tokenizers.count(encoding, p) for p in prompts)
    _check_context(
        served,
        max((emulator.tokenizers.count(encoding, p) for p in prompts), default=0),
        body.max_tokens,
        "prompt",
    )
    choices, completion_tokens = [], 0
    for p, prompt in enumerate(prompts):
        text, finish, tokens = _reply(emulator, served, prompt, body.max_tokens, body.stop)
        for j in range(body.n):
            choices.append(Choice(p * body.n + j, (prompt + text) if body.echo else text, finish))
            completion_tokens += tokens
    head = {
        "id": new_id("cmpl-", 29),
        "object": "text_completion",
        "created": int(time.time()),
        "model": served.name,
        "system_fingerprint": FINGERPRINT,
    }
    return _respond(emulator, body, head, choices, _usage(prompt_tokens, completion_tokens), chat=False)
