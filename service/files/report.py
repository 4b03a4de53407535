"""The validation report of a training file (stored with the file, served at
`GET /v1/files/{id}/validation`): errors and warnings by category with their lines, the example
count and format, and token statistics per encoding."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Format = Literal["chat", "completion", "preference"]
PersonalDataPolicy = Literal["warn", "redact", "reject"]


class Issue(BaseModel):
    """One problem, on one line (`null` for the file as a whole: empty, too few examples)."""

    line: int | None = Field(description="1-based line number; null when the problem is the whole file's")
    category: str = "invalid"
    message: str


class CategoryCount(BaseModel):
    """How often one category occurred, and its first lines."""

    count: int
    lines: list[int] = Field(description="the first lines where it occurred (at most 10)")


class Distribution(BaseModel):
    """A distribution over the examples (percentiles interpolate linearly, as numpy's do)."""

    min: float
    max: float
    mean: float
    median: float
    p5: float
    p95: float


class ContextLimit(BaseModel):
    """The examples longer than a training context limit: the provider truncates them."""

    limit: int = Field(description="the training context, in tokens")
    models: list[str] = Field(description="the base models with this limit and encoding")
    examples_over: int
    first_lines: list[int]
    billed_tokens: int = Field(description="tokens billed per epoch: each example counts up to the limit")


class TokenStats(BaseModel):
    """Token counts of the valid examples with one encoding (`o200k_base`, `cl100k_base`)."""

    encoding: str
    models: list[str] = Field(description="the base models that use this encoding")
    total_tokens: int = Field(description="all tokens of all examples")
    trained_tokens: int = Field(description="assistant tokens that are trained (weight 1)")
    example_tokens: Distribution | None
    assistant_tokens: Distribution | None
    limits: list[ContextLimit]


class PersonalDataKind(BaseModel):
    """How often one kind of personal data or secret was found, masked, never in full."""

    count: int
    lines: list[int] = Field(description="the first lines where it was found (at most 10)")
    masked: list[str] = Field(description="the first findings, masked (at most 3)")


class PersonalDataReport(BaseModel):
    """Personal data and secrets found in the examples, and what the file's policy did about them:
    `warn` reports them (never blocking), `reject` makes each an error on its line, `redact`
    writes a redacted copy (`redacted_file`), the file jobs should train on."""

    policy: PersonalDataPolicy
    findings: int = 0
    kinds: dict[str, PersonalDataKind] = Field(
        default_factory=dict,
        description="keyed by kind: email, phone_number, payment_card, iban, api_key, private_key",
    )
    redacted_file: str | None = Field(
        default=None, description="under `redact`, the id of the redacted copy (the original is untouched)"
    )


class ValidationReport(BaseModel):
    """What validating a file found. Errors block jobs on the file; warnings never do."""

    format: Format | None = None
    examples: int = Field(0, description="valid examples")
    lines: int = 0
    error_count: int = 0
    errors: list[Issue] = Field(default_factory=list, description="the first errors, in line order")
    error_categories: dict[str, CategoryCount] = Field(default_factory=dict)
    warning_count: int = 0
    warnings: list[Issue] = Field(default_factory=list, description="the first warnings, in line order")
    warning_categories: dict[str, CategoryCount] = Field(default_factory=dict)
    messages_per_example: Distribution | None = None
    examples_with_images: int = 0
    tokens: dict[str, TokenStats] = Field(default_factory=dict, description="keyed by encoding")
    pending_encodings: list[str] = Field(
        default_factory=list,
        description="encodings of the format's models not counted yet (cl100k_base for gpt-3.5-turbo): "
        "counted by the file's worker right after validation, then in `tokens`",
    )
    personal_data: PersonalDataReport | None = Field(
        default=None, description="null when the file was not scanned (files the service made)"
    )

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> str:
        """The file's `status_details`: the first error with its line, or what the file holds."""
        if self.ok:
            return f"{self.examples} {self.format} examples"
        first = self.errors[0]
        more = f" ({self.error_count - 1} more errors)" if self.error_count > 1 else ""
        where = f"Line {first.line}: " if first.line else ""
        return f"{where}{first.message}{more}"
