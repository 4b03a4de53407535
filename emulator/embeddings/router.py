"""``POST /v1/embeddings``: deterministic vectors from ``emulator.embeddings.vectors``, in OpenAI's
response shape (``float`` or ``base64``), with prompt-token usage counted by the model's encoding."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from emulator.deps import CurrentEmulator
from emulator.embeddings.schemas import EmbeddingRequest
from emulator.embeddings.vectors import as_base64, embed
from emulator.errors import InvalidRequest, NotFound
from emulator.models.catalog import EMBEDDING_MODELS

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/embeddings")
def create_embeddings(emulator: CurrentEmulator, body: EmbeddingRequest) -> dict[str, Any]:
    """Embed one text (or token list) or several."""
    model = EMBEDDING_MODELS.get(body.model)
    if model is None:
        raise NotFound(
            f"The model `{body.model}` is not an embedding model and thus not supported in the "
            "v1/embeddings endpoint.",
            param="model",
            code="model_not_found",
        )
    dimensions = _dimensions(body.dimensions, model.dimensions, model.shortenable)
    tokenizers = emulator.tokenizers
    data, prompt_tokens = [], 0
    for index, item in enumerate(body.items()):
        if isinstance(item, list):  # token ids: embed the text they stand for
            tokens = len(item)
            text = tokenizers.decode(model.encoding, item)
        else:
            if not item:
                raise InvalidRequest("'$.input' is invalid: an input may not be empty.", param="input")
            text = item
            tokens = tokenizers.count(model.encoding, item)
        if tokens > model.max_input_tokens:
            raise InvalidRequest(
                f"This model's maximum context length is {model.max_input_tokens} tokens, however you "
                f"requested {tokens} tokens in input[{index}]. Please reduce your prompt.",
                param="input",
                code="context_length_exceeded",
            )
        prompt_tokens += tokens
        vector = embed(text, dimensions, model.dimensions)
        encoded: list[float] | str = as_base64(vector) if body.encoding_format == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": model.id,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _dimensions(asked: int | None, full: int, shortenable: bool) -> int:
    if asked is None:
        return full
    if not shortenable:
        raise InvalidRequest("This model does not support specifying dimensions.", param="dimensions")
    if asked > full:
        raise InvalidRequest(
            f"'dimensions' must be at most {full} for this model; got {asked}.", param="dimensions"
        )
    return asked
