"""The shapes of a fine-tuning job's evaluation (native extras): the option a job create takes
(`evaluation`, which the `openai` SDK sends with `extra_body`), the evaluation object at
`GET /v1/fine_tuning/jobs/{job_id}/evaluation`, and the short reference a job object carries."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from service.clock import to_unix
from service.evals.models import JobEvaluationRow


class EvaluationOptions(BaseModel):
    """Evaluate the fine-tuned model against its base model when the job succeeds. A job with a
    `validation_file` is evaluated on it by default; this option names other examples, other
    criteria, or switches the evaluation off."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="`false`: no evaluation, even with a validation file.")
    file: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="A file of yours holding held-out examples in the fine-tuning format (chat "
        "`messages`, or preference `input`/`preferred_output`). Default: the job's `validation_file`.",
    )
    testing_criteria: list[Any] | None = Field(
        default=None,
        min_length=1,
        description="Graders, as an eval's `testing_criteria`, over `item.reference` (the example's "
        "last assistant turn) and `sample.output_text`. Default: `exact` (string_check eq), "
        "`rouge_l` (pass at 0.6) and `fuzzy` (fuzzy_match, pass at 0.8).",
    )


class EvaluationError(BaseModel):
    code: str
    message: str


class JobEvaluationRef(BaseModel):
    """Where a succeeded job's evaluation stands (the full object is at `url`)."""

    id: str
    status: Literal["queued", "running", "completed", "failed"]
    verdict: str | None = Field(description="The comparison's verdict, once completed.")
    eval_id: str | None
    url: str

    @classmethod
    def from_row(cls, row: JobEvaluationRow) -> Self:
        return cls(
            id=row.id,
            status=row.status,
            verdict=(row.comparison or {}).get("verdict"),
            eval_id=row.eval_id,
            url=f"/v1/fine_tuning/jobs/{row.job_id}/evaluation",
        )


class JobEvaluation(BaseModel):
    """A succeeded job's fine-tuned model against its base model on held-out examples: one eval,
    a run of each model over the same items, and their comparison (candidate: the fine-tuned
    model; baseline: the base model), as `GET /v1/evals/{eval_id}/runs/{run_id}/compare/{other}`
    gives it."""

    id: str = Field(description="`ftjobeval-…`")
    object: Literal["fine_tuning.job.evaluation"] = "fine_tuning.job.evaluation"
    fine_tuning_job_id: str
    status: Literal["queued", "running", "completed", "failed"] = Field(
        description="`queued` until its runs are created, `running` while they run, then `completed` "
        "(the comparison is in) or `failed` (see `error`; the job's success is unaffected)."
    )
    base_model: str
    fine_tuned_model: str
    file_id: str = Field(description="The examples evaluated on.")
    items: int = Field(description="The examples asked.")
    skipped_examples: int = Field(
        description="Examples that could not be asked (no assistant turn, or content that is not text)."
    )
    eval_id: str | None
    base_run_id: str | None
    fine_tuned_run_id: str | None
    verdict: str | None = Field(description="The comparison's verdict, once completed.")
    comparison: dict[str, Any] | None = Field(
        description="The comparison (`eval.comparison`), once completed."
    )
    error: EvaluationError | None
    created_at: int
    finished_at: int | None

    @classmethod
    def from_row(cls, row: JobEvaluationRow) -> Self:
        return cls(
            id=row.id,
            fine_tuning_job_id=row.job_id,
            status=row.status,
            base_model=row.base_model,
            fine_tuned_model=row.fine_tuned_model,
            file_id=row.file_id,
            items=row.items,
            skipped_examples=row.skipped_examples,
            eval_id=row.eval_id,
            base_run_id=row.base_run_id,
            fine_tuned_run_id=row.fine_tuned_run_id,
            verdict=(row.comparison or {}).get("verdict"),
            comparison=row.comparison,
            error=EvaluationError(**row.error) if row.error else None,
            created_at=to_unix(row.created_at) or 0,
            finished_at=to_unix(row.finished_at),
        )
