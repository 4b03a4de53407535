"""Evaluate on success: a succeeded fine-tuning job's model against its base model, and the gated
promotions that wait for that evidence.

Three steps, each its own short transaction, so the job's success is never delayed or undone by
its evaluation:

1. `schedule` (in the transaction that records the success): one `queued` row and an
   `evals.evaluate_job` task through the outbox. Nothing is read or checked here.
2. `start` (the task): read the examples, create the eval and one run per model over the same
   items — the base model, the fine-tuned model, and for each gated deployment waiting on the job
   its current target (a run is shared when two need the same model) — all in one transaction,
   so a task that arrives twice finds the row `running` and does nothing. The runs go through the
   Celery eval runner like any other: a worker that dies mid-run never samples an item twice.
   A problem (no usable example, a criterion the eval refuses) fails the evaluation with its
   reason, and refuses the waiting promotions.
3. `conclude` (queued by each linked run's end, see `service.evals.service.finish_run`): once
   both runs are final, record the comparison and announce `fine_tuning.job.evaluation.completed`
   (or `.failed`), and let each waiting deployment decide
   (`service.deployments.promotion.decide`). Conditional updates make each outcome happen once.

A sweep (with the eval runs' sweep) queues a `start` left `queued` and a `conclude` whose runs
are final, in case the task that should have done it was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.models import TenantRow
from service.blobs.store import BlobNotFound, BlobStore
from service.clock import utcnow
from service.config import Settings
from service.deployments import gate
from service.errors import InvalidRequest, NotFound, ServiceError
from service.evals.criteria import check_testing_criteria
from service.evals.examples import DEFAULT_CRITERIA, ITEM_SCHEMA, read_examples
from service.evals.job_outcomes import fail
from service.evals.job_schemas import EvaluationOptions, JobEvaluationRef
from service.evals.models import (
    EvalRow,
    EvalRunRow,
    JobEvaluationRow,
    JobEvaluationStatus,
)
from service.evals.schemas import EvalCreate, RunCreate
from service.evals.service import create_eval, create_run
from service.files.service import get_file
from service.ids import new_id
from service.outbox import service as outbox
from service.tasks import TaskName
from service.tenancy import owned

log = logging.getLogger(__name__)

SAMPLING = {"temperature": 0.0}  # both models asked the same way, as reproducibly as they allow


def references(session: Session, *, tenant_id: str, job_ids: list[str]) -> dict[str, JobEvaluationRef]:
    """The evaluations of these jobs of the tenant's, by job id."""
    if not job_ids:
        return {}
    rows = session.scalars(owned(JobEvaluationRow, tenant_id).where(JobEvaluationRow.job_id.in_(job_ids)))
    return {row.job_id: JobEvaluationRef.from_row(row) for row in rows}


def get_for_job(session: Session, *, tenant_id: str, job_id: str) -> JobEvaluationRow:
    """The evaluation of the tenant's job `job_id`; 404 when the job is not the tenant's or has none."""
    row = session.scalar(owned(JobEvaluationRow, tenant_id).where(JobEvaluationRow.job_id == job_id))
    if row is None:
        raise NotFound(
            f"The fine-tuning job '{job_id}' has no evaluation (it has not succeeded, or it had no "
            "validation file and asked for none).",
            param="job_id",
            code="evaluation_not_found",
        )
    return row


def check_options(session: Session, options: EvaluationOptions, *, tenant_id: str) -> None:
    """At job create: the file is the tenant's and the criteria are graders an eval accepts (a
    400 or 404 naming `evaluation.…`)."""
    if options.file is not None:
        try:
            get_file(session, tenant_id=tenant_id, file_id=options.file)
        except NotFound as missing:
            missing.param = "evaluation.file"
            raise
    if options.testing_criteria is not None:
        try:
            check_testing_criteria(options.testing_criteria)
        except InvalidRequest as invalid:
            invalid.param = f"evaluation.{invalid.param}"
            raise


def schedule(
    session: Session,
    *,
    tenant_id: str,
    job_id: str,
    base_model: str,
    fine_tuned_model: str,
    validation_file: str | None,
    request: Mapping[str, Any] | None,
) -> bool:
    """Queue the job's evaluation, if it gets one (a validation file, or `evaluation.file`, and not
    switched off); whether it does. Called in the transaction recording the job's success."""
    options = EvaluationOptions.model_validate((request or {}).get("evaluation") or {})
    file_id = options.file or validation_file
    if not options.enabled or file_id is None:
        return False
    if session.scalar(select(JobEvaluationRow.id).where(JobEvaluationRow.job_id == job_id)) is not None:
        return True
    row = JobEvaluationRow(
        id=new_id("ftjobeval-"),
        tenant_id=tenant_id,
        job_id=job_id,
        status=JobEvaluationStatus.QUEUED,
        base_model=base_model,
        fine_tuned_model=fine_tuned_model,
        file_id=file_id,
        testing_criteria=options.testing_criteria,
        items=0,
        skipped_examples=0,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    outbox.enqueue(session, TaskName.EVALS_EVALUATE_JOB, evaluation_id=row.id)
    return True


def start(session: Session, blobs: BlobStore, settings: Settings, evaluation_id: str) -> None:
    """Create the evaluation's eval and runs (once; see the module docstring)."""
    row = session.get(JobEvaluationRow, evaluation_id, with_for_update=True)
    if row is None or row.status != JobEvaluationStatus.QUEUED:
        return
    tenant = session.get(TenantRow, row.tenant_id)
    assert tenant is not None
    try:
        with session.begin_nested():
            runs = _create_runs(session, blobs, settings, row, tenant.name)
    except ServiceError as error:
        fail(session, row, error.code or "evaluation_invalid", error.message)
        return
    except BlobNotFound:
        fail(session, row, "file_not_found", f"The content of the file {row.file_id} is gone.")
        return
    _attach_decisions(session, blobs, settings, row, tenant.name, runs)
    row.status = JobEvaluationStatus.RUNNING


def _create_runs(
    session: Session, blobs: BlobStore, settings: Settings, row: JobEvaluationRow, tenant_name: str
) -> dict[str, str]:
    file = get_file(session, tenant_id=row.tenant_id, file_id=row.file_id)
    with blobs.open(file.blob_key) as stream:
        examples = read_examples(stream, max_items=settings.evals_max_items)
    if not examples.items:
        raise InvalidRequest(
            f"The file {row.file_id} holds no example that can be asked (a prompt, then an assistant "
            f"turn of text); {examples.skipped} examples were skipped.",
            code="no_usable_examples",
        )
    config = {"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True}
    eval_row = create_eval(
        session,
        EvalCreate(
            name=f"{row.job_id}: {row.fine_tuned_model} vs {row.base_model}",
            data_source_config=config,
            testing_criteria=row.testing_criteria or DEFAULT_CRITERIA,
            metadata={"fine_tuning_job": row.job_id},
        ),
        tenant_id=row.tenant_id,
        tenant_name=tenant_name,
        settings=settings,
    )
    row.eval_id = eval_row.id
    row.items, row.skipped_examples = len(examples.items), examples.skipped
    runs = {}
    for role, model in (("base", row.base_model), ("fine_tuned", row.fine_tuned_model)):
        runs[model] = _run(
            session, blobs, settings, eval_row, row, tenant_name, model, role, examples.items
        ).id
    row.base_run_id, row.fine_tuned_run_id = runs[row.base_model], runs[row.fine_tuned_model]
    return runs


def _run(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    eval_row: EvalRow,
    row: JobEvaluationRow,
    tenant_name: str,
    model: str,
    role: str,
    items: list[dict[str, Any]],
) -> EvalRunRow:
    source = {
        "type": "completions",
        "model": model,
        "source": {"type": "file_content", "content": [{"item": item} for item in items]},
        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
        "sampling_params": SAMPLING,
    }
    return create_run(
        session,
        blobs,
        eval_row,
        RunCreate(
            name=f"{role}: {model}",
            data_source=source,
            metadata={"fine_tuning_job": row.job_id, "role": role},
        ),
        tenant_name=tenant_name,
        settings=settings,
    )


def _items_of(session: Session, row: JobEvaluationRow) -> list[dict[str, Any]]:
    """The evaluation's items, as its base run holds them (every run has the same ones)."""
    first = session.get(EvalRunRow, row.base_run_id)
    assert first is not None
    return [entry["item"] for entry in first.data_source["source"]["content"]]


def _attach_decisions(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    row: JobEvaluationRow,
    tenant_name: str,
    runs: dict[str, str],
) -> None:
    """A run of each waiting deployment's current target over the same items (shared between
    deployments with the same target), and the decision told which runs to compare."""
    eval_row = session.get(EvalRow, row.eval_id)
    assert eval_row is not None
    items = _items_of(session, row)
    for decision in gate.pending_for_job(session, tenant_id=row.tenant_id, job_id=row.job_id):
        baseline = gate.baseline_of(session, decision)
        if baseline is None:
            continue
        if baseline == row.fine_tuned_model:
            gate.refuse(
                session, decision, "already_target", f"{baseline} is the deployment's target already."
            )
            continue
        if baseline not in runs:
            try:
                with session.begin_nested():
                    run = _run(
                        session, blobs, settings, eval_row, row, tenant_name, baseline, "target", items
                    )
            except ServiceError as error:
                gate.refuse(
                    session,
                    decision,
                    "evaluation_failed",
                    f"The deployment's target {baseline} could not be run: {error.message}",
                )
                continue
            runs[baseline] = run.id
        gate.attach(
            decision,
            baseline_model=baseline,
            eval_id=eval_row.id,
            candidate_run_id=runs[row.fine_tuned_model],
            baseline_run_id=runs[baseline],
        )
