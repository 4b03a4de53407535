"""Body of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

Text = Annotated[str, Field(max_length=1_000_000)]
Tokens = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request; ``user`` and other unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    input: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=2048)]
        | Tokens
        | Annotated[list[Tokens], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None

    def items(self) -> list[str | list[int]]:
        """The inputs one by one: texts, or lists of token ids."""
        value = self.input
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]
        return cast(list[str | list[int]], value)
