"""The pre-flight estimate of a job: what it would train on, for how many epochs, at what cost,
and whether it may proceed, computed from the files' validation reports (nothing is created).

Costs are `service.jobs.costs`'s; the tenant's monthly budget (`service.jobs.budgets`) is
reported with what is left of it.
With a validation file, both files are streamed once more to find validation examples that are
also in the training file (a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from service.auth.service import Principal
from service.blobs.store import BlobStore
from service.clock import utcnow
from service.errors import InvalidRequest
from service.files.duplicates import overlap
from service.files.encodings import pending_encoding, report_for_model
from service.files.models import FileRow, FileStatus
from service.files.report import ValidationReport
from service.jobs import budgets
from service.jobs import service as jobs
from service.jobs.costs import billed_tokens, default_epochs, training_cost
from service.jobs.schemas import JobCreate, JobEstimate
from service.models.catalog import BASE_MODELS, base_model_of
from service.models.prices import training_price
from service.models.service import owned_fine_tuned_model


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


def estimate_job(
    session: Session,
    request: JobCreate,
    *,
    caller: Principal,
    prices: Mapping[str, float],
    blobs: BlobStore,
    now: datetime | None = None,
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
    counting = pending_encoding(training, model)
    if counting is not None:
        estimate.warnings.append(
            f"training_file: the {counting} tokens of file '{training.id}' are still being counted; "
            "the estimate is incomplete."
        )
    report = report_for_model(training, model)
    if report is not None:
        fill_from_report(estimate, report, model, epochs_setting)
    if len(files) == 2 and all(row.status == FileStatus.PROCESSED for _, row in files):
        _overlap(estimate, blobs, training, files[1][1])
    if estimate.price_per_million_tokens is None:
        estimate.warnings.append(
            f"No training price is known for {model}; set FTM_TRAINING_PRICES to price it."
        )
    estimate.allowed_to_proceed = not estimate.errors
    _budget(estimate, session, caller.tenant_id, now or utcnow())
    return estimate


def _budget(estimate: JobEstimate, session: Session, tenant_id: str, now: datetime) -> None:
    budget = budgets.budget_of(session, tenant_id, now)
    if budget is None:
        return
    estimate.monthly_budget_usd = budget.monthly_usd
    estimate.budget_committed_usd = budget.committed_usd
    estimate.budget_left_usd = budget.left_usd
    if estimate.estimated_cost_usd is None:
        return
    reason = budget.refusal(estimate.estimated_cost_usd)
    if reason is not None:
        estimate.warnings.append(f"{reason} A job create would be refused.")
        estimate.allowed_to_proceed = False


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
    billed = billed_tokens(report, model)
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
