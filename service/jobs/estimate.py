"""The pre-flight estimate of a job: what it would train on, for how many epochs, at what cost,
and whether it may proceed, computed from the files' validation reports (nothing is created).

Billed tokens per epoch are the training file's tokens in the model's encoding, each example
counted up to the model's training context (longer ones are truncated). When `n_epochs` is
`auto`, the epochs are OpenAI's default heuristic (its cookbook): 3, raised for small files so
they see about 100 examples, lowered for large ones to about 25,000, within 1 to 25. The cost is
`price per 1M tokens / 1M x billed tokens per epoch x epochs`; validation tokens are free.
With a validation file, both files are streamed once more to find validation examples that are
also in the training file (a warning).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from service.auth.service import Principal
from service.blobs.store import BlobStore
from service.errors import InvalidRequest
from service.files.duplicates import overlap
from service.files.models import FileRow, FileStatus
from service.files.report import ValidationReport
from service.jobs import service as jobs
from service.jobs.schemas import JobCreate, JobEstimate
from service.models.catalog import BASE_MODELS, base_model_of
from service.models.prices import training_price
from service.models.service import owned_fine_tuned_model

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(examples: int) -> int:
    """The epochs OpenAI picks for `n_epochs: auto` on a file of `examples` examples."""
    if examples <= 0:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // examples)
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


def training_cost(billed_tokens_per_epoch: int, epochs: int, usd_per_million: float) -> float:
    return round(usd_per_million / 1_000_000 * billed_tokens_per_epoch * epochs, 6)


def _base_model(session: Session, request: JobCreate, caller: Principal) -> str:
    if request.model in BASE_MODELS:
        return request.model
    if request.model.startswith("ft:"):
        owned_fine_tuned_model(session, tenant_id=caller.tenant_id, model=request.model)
        base = base_model_of(request.model)
        if base in BASE_MODELS:
            return base
    raise InvalidRequest(
        f"Model '{request.model}' cannot be fine-tuned; choose one of {', '.join(BASE_MODELS)}, "
        "or a fine-tuned model of yours.",
        param="model",
        code="model_not_available",
    )


def _billed_tokens(report: ValidationReport, model: str) -> int | None:
    base = BASE_MODELS[model]
    stats = report.tokens.get(base.encoding)
    if stats is None:
        return None
    for limit in stats.limits:
        if model in limit.models:
            return limit.billed_tokens
    return None


def estimate_job(
    session: Session,
    request: JobCreate,
    *,
    caller: Principal,
    prices: Mapping[str, float],
    blobs: BlobStore,
) -> JobEstimate:
    """The estimate of `request` as a job create would take it; a bad parameter is the same 400."""
    model = _base_model(session, request, caller)
    method = jobs.method_type(request)
    epochs_setting = jobs.hyperparameters_of(request)["n_epochs"]
    estimate = JobEstimate(
        model=request.model,
        base_model=model,
        encoding=BASE_MODELS[model].encoding,
        training_file=request.training_file,
        validation_file=request.validation_file,
        n_epochs_auto=epochs_setting == "auto",
        price_per_million_tokens=training_price(model, prices),
    )
    files: list[tuple[str, FileRow]] = [
        ("training_file", jobs.load_file(session, caller.tenant_id, request.training_file, "training_file"))
    ]
    if request.validation_file is not None:
        if request.validation_file == request.training_file:
            raise InvalidRequest(
                "The validation file must differ from the training file.", param="validation_file"
            )
        files.append(
            (
                "validation_file",
                jobs.load_file(session, caller.tenant_id, request.validation_file, "validation_file"),
            )
        )
    for param, row in files:
        problem = jobs.file_problem(row, model=model, method=method)
        if problem is not None:
            estimate.errors.append(f"{param}: {problem}")
        elif row.status != FileStatus.PROCESSED:
            estimate.warnings.append(
                f"{param}: file '{row.id}' is still being validated; the estimate is incomplete."
            )
    training = files[0][1]
    if training.status == FileStatus.PROCESSED and training.report is not None:
        fill_from_report(estimate, ValidationReport.model_validate(training.report), model, epochs_setting)
    if len(files) == 2 and all(row.status == FileStatus.PROCESSED for _, row in files):
        _overlap(estimate, blobs, training, files[1][1])
    if estimate.price_per_million_tokens is None:
        estimate.warnings.append(
            f"No training price is known for {model}; set FTM_TRAINING_PRICES to price it."
        )
    estimate.allowed_to_proceed = not estimate.errors
    return estimate


def _overlap(estimate: JobEstimate, blobs: BlobStore, training: FileRow, validation: FileRow) -> None:
    with blobs.open(training.blob_key) as train_stream, blobs.open(validation.blob_key) as validation_stream:
        found = overlap(train_stream, validation_stream)
    estimate.validation_examples_in_training = found.examples
    if found.examples:
        lines = ", ".join(map(str, found.first_lines))
        estimate.warnings.append(
            f"validation_file: {found.examples} examples are also in the training file, up to case, spacing "
            f"and punctuation (first lines {lines}); validation figures will look better than they are."
        )


def fill_from_report(
    estimate: JobEstimate, report: ValidationReport, model: str, epochs_setting: object
) -> None:
    """The training file's share of the estimate (epochs, billed tokens, cost, its warnings), from
    its report alone: `ftm data prepare` prices a file it has just written with this too."""
    estimate.training_examples = report.examples
    estimate.n_epochs = epochs_setting if isinstance(epochs_setting, int) else default_epochs(report.examples)
    billed = _billed_tokens(report, model)
    if billed is None:
        return
    estimate.billed_tokens_per_epoch = billed
    estimate.total_billed_tokens = billed * estimate.n_epochs
    if estimate.price_per_million_tokens is not None:
        estimate.estimated_cost_usd = training_cost(
            billed, estimate.n_epochs, estimate.price_per_million_tokens
        )
    stats = report.tokens[BASE_MODELS[model].encoding]
    for limit in stats.limits:
        if model in limit.models and limit.examples_over:
            estimate.warnings.append(
                f"{limit.examples_over} training examples are longer than {model}'s {limit.limit}-token "
                f"training context and will be truncated (first lines {', '.join(map(str, limit.first_lines))})."
            )
    for category, counted in report.warning_categories.items():
        if category != "over_context_limit":
            lines = f" (first lines {', '.join(map(str, counted.lines))})" if counted.lines else ""
            estimate.warnings.append(f"training_file: {category} x {counted.count}{lines}")
