"""Routes of inference: ``/v1/chat/completions`` and ``/v1/completions`` (with ``stream=true``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from emulator.deps import CurrentEmulator, advance_jobs
from emulator.errors import NotFound
from emulator.ids import new_id
from emulator.inference import grading
from emulator.inference import service as inference
from emulator.inference.schemas import ChatRequest, CompletionRequest, Generation
from emulator.inference.streaming import Choice, stream_chunks
from emulator.runtime import Emulator

router = APIRouter(prefix="/v1", tags=["inference"], dependencies=[Depends(advance_jobs)])


def _respond(
    emulator: Emulator,
    req: Generation,
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
            sleep=emulator.clock.sleep,
        )
        return StreamingResponse(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    return {**head, "choices": inference.rendered_choices(choices, chat=chat), "usage": usage}


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
    tokenizers = emulator.tokenizers
    messages = [(m.role, m.text(), m.name) for m in body.messages]
    prompt_tokens = tokenizers.count_chat(served.base.encoding, messages)
    max_tokens = body.max_completion_tokens or body.max_tokens
    inference.check_context(served, prompt_tokens, max_tokens, "messages")
    question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
    response_format = (body.model_extra or {}).get("response_format")
    kind = grading.grader_kind(response_format)
    if kind is not None and isinstance(response_format, dict):
        texts = [m.text() for m in body.messages if m.role != "system"]
        text = grading.grade(kind, response_format, texts)
        finish, tokens = "stop", tokenizers.count(served.base.encoding, text)
    else:
        text, finish, tokens = inference.reply(tokenizers, served, question, max_tokens, body.stop)
    choices = [Choice(i, text, finish) for i in range(body.n)]
    head = {
        "id": new_id("chatcmpl-", 29),
        "object": "chat.completion.chunk" if body.stream else "chat.completion",
        "created": int(emulator.clock.now()),
        "model": served.name,
        "system_fingerprint": inference.FINGERPRINT,
        "service_tier": "default",
    }
    usage = inference.usage(prompt_tokens, tokens * body.n)
    return _respond(emulator, body, head, choices, usage, chat=True)


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
    tokenizers, encoding = emulator.tokenizers, served.base.encoding
    prompts = inference.completion_prompts(tokenizers, encoding, body.prompt)
    prompt_tokens = sum(tokenizers.count(encoding, p) for p in prompts)
    longest = max((tokenizers.count(encoding, p) for p in prompts), default=0)
    inference.check_context(served, longest, body.max_tokens, "prompt")
    choices, completion_tokens = [], 0
    for p, prompt in enumerate(prompts):
        text, finish, tokens = inference.reply(tokenizers, served, prompt, body.max_tokens, body.stop)
        for j in range(body.n):
            choices.append(Choice(p * body.n + j, (prompt + text) if body.echo else text, finish))
            completion_tokens += tokens
    head = {
        "id": new_id("cmpl-", 29),
        "object": "text_completion",
        "created": int(emulator.clock.now()),
        "model": served.name,
        "system_fingerprint": inference.FINGERPRINT,
    }
    usage = inference.usage(prompt_tokens, completion_tokens)
    return _respond(emulator, body, head, choices, usage, chat=False)
