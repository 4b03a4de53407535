"""The evals API's objects, in OpenAI's shapes (`openai.types.Eval*`, `openai.types.evals.*`), so
the `openai` SDK parses them in strict response validation."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, Field, field_validator

from service.clock import to_unix
from service.evals.models import EvalRow, EvalRunItemRow, EvalRunRow

MAX_METADATA_PAIRS = 16


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise ValueError(f"at most {MAX_METADATA_PAIRS} metadata pairs")
    for key, item in value.items():
        if len(key) > 64 or len(item) > 512:
            raise ValueError("metadata keys are at most 64 characters and values at most 512")
    return value


class EvalCreate(BaseModel):
    """Create an eval: what its items look like and how each is graded."""

    data_source_config: dict[str, Any] = Field(
        description='`{"type": "custom", "item_schema": {...}, "include_sample_schema": bool}`.'
    )
    testing_criteria: list[Any] = Field(description="The graders that score each item.")
    name: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class EvalUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class Eval(BaseModel):
    """An eval: its data source config (with the JSON schema of `item` and `sample`) and criteria."""

    id: str
    object: Literal["eval"] = "eval"
    created_at: int
    name: str
    metadata: dict[str, str] | None
    data_source_config: dict[str, Any]
    testing_criteria: list[dict[str, Any]]

    @classmethod
    def from_row(cls, row: EvalRow) -> Self:
        return cls(
            id=row.id,
            created_at=to_unix(row.created_at) or 0,
            name=row.name or "",
            metadata=row.metadata_ or None,
            data_source_config=row.data_source_config,
            testing_criteria=row.testing_criteria,
        )


class EvalDeleted(BaseModel):
    object: Literal["eval.deleted"] = "eval.deleted"
    deleted: bool = True
    eval_id: str


class RunCreate(BaseModel):
    """Start a run of an eval over a data source."""

    data_source: dict[str, Any] = Field(description="`jsonl` or `completions` (OpenAI's shapes).")
    name: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class ApiError(BaseModel):
    code: str
    message: str


class ResultCounts(BaseModel):
    total: int
    passed: int
    failed: int
    errored: int


class ModelUsage(BaseModel):
    model_name: str
    invocation_count: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class CriterionResult(BaseModel):
    testing_criteria: str
    passed: int
    failed: int


class Run(BaseModel):
    """A run: its status and, as items finish, the counts, usage and per-criterion results."""

    id: str
    object: Literal["eval.run"] = "eval.run"
    eval_id: str
    created_at: int
    name: str
    model: str
    status: str = Field(description="`queued`, `in_progress`, `completed`, `failed` or `canceled`.")
    data_source: dict[str, Any]
    metadata: dict[str, str] | None
    error: ApiError = Field(description="Empty `code` and `message` unless the run failed.")
    result_counts: ResultCounts
    per_model_usage: list[ModelUsage]
    per_testing_criteria_results: list[CriterionResult]
    report_url: str

    @classmethod
    def from_row(cls, row: EvalRunRow) -> Self:
        return cls(
            id=row.id,
            eval_id=row.eval_id,
            created_at=to_unix(row.created_at) or 0,
            name=row.name,
            model=row.model or "",
            status=row.status,
            data_source=row.data_source,
            metadata=row.metadata_ or None,
            error=ApiError(**(row.error or {"code": "", "message": ""})),
            result_counts=ResultCounts(**row.result_counts),
            per_model_usage=[ModelUsage(**usage) for usage in row.per_model_usage],
            per_testing_criteria_results=[CriterionResult(**r) for r in row.per_testing_criteria_results],
            report_url=f"/v1/evals/{row.eval_id}/runs/{row.id}",
        )


class RunDeleted(BaseModel):
    object: Literal["eval.run.deleted"] = "eval.run.deleted"
    deleted: bool = True
    run_id: str


class SampleUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


class SampleMessage(BaseModel):
    role: str
    content: str


class Sample(BaseModel):
    """What the model answered for the item (for a `jsonl` run: the item's own `sample`)."""

    model: str
    input: list[SampleMessage]
    output: list[SampleMessage]
    finish_reason: str
    usage: SampleUsage
    error: ApiError
    seed: int
    temperature: float
    top_p: float
    max_completion_tokens: int


class Result(BaseModel):
    name: str
    type: str
    score: float
    passed: bool
    sample: dict[str, Any] | None = None


class OutputItem(BaseModel):
    """One item of a run: the item, its sample, each criterion's result; `status` `pass`, `fail`,
    `error` (see the sample's or the results' error), or `pending` while the run works on it."""

    id: str
    object: Literal["eval.run.output_item"] = "eval.run.output_item"
    eval_id: str
    run_id: str
    created_at: int
    status: str
    datasource_item_id: int
    datasource_item: dict[str, Any]
    results: list[Result]
    sample: Sample

    @classmethod
    def from_row(cls, row: EvalRunItemRow) -> Self:
        return cls(
            id=row.id,
            eval_id=row.eval_id,
            run_id=row.run_id,
            created_at=to_unix(row.created_at) or 0,
            status=item_status(row),
            datasource_item_id=row.datasource_item_id,
            datasource_item=row.item,
            results=[Result(**{k: v for k, v in r.items() if k != "usage"}) for r in row.results],
            sample=_sample(row),
        )


def item_status(row: EvalRunItemRow) -> str:
    if row.status != "done":
        return "pending"
    if row.error is not None:
        return "error"
    return "pass" if row.passed else "fail"


def _sample(row: EvalRunItemRow) -> Sample:
    sample = row.sample or {}
    error = row.error if row.error is not None and sample.get("error") is None else sample.get("error")
    return Sample(
        model=str(sample.get("model") or ""),
        input=[SampleMessage(**m) for m in sample.get("input", [])],
        output=[SampleMessage(**m) for m in sample.get("output", [])],
        finish_reason=str(sample.get("finish_reason") or ""),
        usage=SampleUsage(**sample.get("usage", {})),
        error=ApiError(**(error or {"code": "", "message": ""})),
        seed=int(sample.get("seed") or 0),
        temperature=float(sample.get("temperature", 1.0)),
        top_p=float(sample.get("top_p", 1.0)),
        max_completion_tokens=int(sample.get("max_completion_tokens") or 0),
    )
