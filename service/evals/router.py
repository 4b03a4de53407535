"""`/v1/evals` (scope `fine_tuning`): OpenAI's Evals API — evals, their runs, and each run's
output items — the native comparison of two runs (`/v1/evals/{eval_id}/runs/{run_id}/compare/
{other_run_id}`), and a succeeded fine-tuning job's evaluation (`/v1/fine_tuning/jobs/{job_id}/
evaluation`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from service.contract import errors
from service.deps import DbSession, FineTuningCaller, IdempotentCreate, get_runtime
from service.evals import job_evaluations, service
from service.evals.comparison import Comparison, compare_runs
from service.evals.job_schemas import JobEvaluation
from service.evals.models import EvalRow, EvalRunRow
from service.evals.schemas import (
    Eval,
    EvalCreate,
    EvalDeleted,
    EvalUpdate,
    OutputItem,
    Run,
    RunCreate,
    RunDeleted,
)
from service.idempotency.service import reload_owned
from service.jobs.models import JobRow
from service.jobs.service import job_not_found
from service.pagination import After, Order, Page
from service.routing import ServiceRoute
from service.runtime import Runtime
from service.tenancy import get_owned

router = APIRouter(prefix="/v1", tags=["evals"], route_class=ServiceRoute)

EvalId = Annotated[str, Path(description="The eval's id, `eval_…`.")]
RunId = Annotated[str, Path(description="The run's id, `evalrun_…`.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Objects per page (1-100).")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_eval_or_404(eval_id: EvalId, caller: FineTuningCaller, session: DbSession) -> EvalRow:
    return service.get_eval(session, eval_id, tenant_id=caller.tenant_id)


CurrentEval = Annotated[EvalRow, Depends(get_eval_or_404)]


def get_run_or_404(run_id: RunId, eval_row: CurrentEval, session: DbSession) -> EvalRunRow:
    return service.get_run(session, eval_row, run_id)


CurrentRun = Annotated[EvalRunRow, Depends(get_run_or_404)]


@router.post("/evals", response_model=Eval)
def create_eval(
    body: EvalCreate,
    caller: FineTuningCaller,
    session: DbSession,
    runtime: RuntimeDep,
    idempotency: IdempotentCreate,
) -> Eval:
    """Create an eval: a `custom` data source config (`item_schema`, `include_sample_schema`) and
    its testing criteria. `logs` and `stored_completions` configs and `python` graders are a 400
    naming the parameter; so is a grader model that is not yours to call. With an
    `Idempotency-Key`, a retry returns the eval the first request created."""
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route="POST /v1/evals",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: Eval.from_row(
            service.create_eval(
                session,
                body,
                tenant_id=caller.tenant_id,
                tenant_name=caller.tenant_name,
                settings=runtime.settings,
            )
        ),
        reload=reload_owned(session, EvalRow, caller.tenant_id, Eval.from_row),
    )


@router.get("/evals", response_model=Page[Eval])
def list_evals(
    caller: FineTuningCaller,
    session: DbSession,
    after: After = None,
    limit: Limit = 20,
    order: Order = "asc",
    order_by: Annotated[Literal["created_at"], Query(description="Only `created_at`.")] = "created_at",
) -> Page[Eval]:
    """List your tenant's evals."""
    rows, has_more = service.list_evals(
        session, tenant_id=caller.tenant_id, after=after, limit=limit, order=order
    )
    return Page[Eval].of([Eval.from_row(row) for row in rows], has_more)


@router.get("/evals/{eval_id}", response_model=Eval)
def retrieve_eval(eval_row: CurrentEval) -> Eval:
    """Retrieve an eval."""
    return Eval.from_row(eval_row)


@router.post("/evals/{eval_id}", response_model=Eval)
def update_eval(body: EvalUpdate, eval_row: CurrentEval) -> Eval:
    """Change an eval's `name` or `metadata`."""
    return Eval.from_row(service.update_eval(eval_row, body))


@router.delete("/evals/{eval_id}", response_model=EvalDeleted)
def delete_eval(eval_row: CurrentEval, session: DbSession) -> EvalDeleted:
    """Delete an eval with its runs and their output items."""
    answer = EvalDeleted(eval_id=eval_row.id)
    service.delete_eval(session, eval_row)
    return answer


@router.post("/evals/{eval_id}/runs", response_model=Run)
def create_run(
    body: RunCreate,
    eval_row: CurrentEval,
    caller: FineTuningCaller,
    session: DbSession,
    runtime: RuntimeDep,
    idempotency: IdempotentCreate,
) -> Run:
    """Start a run over a `jsonl` or `completions` data source. Items that do not match the eval's
    `item_schema` are a 400 naming the item; `logs`, `stored_completions` and `responses` sources
    are a 400 naming `data_source.type`; a model that is not yours to call is a 404. With an
    `Idempotency-Key`, a retry returns the run the first request started."""
    return idempotency.create(
        session,
        tenant_id=caller.tenant_id,
        route=f"POST /v1/evals/{eval_row.id}/runs",
        parameters=body.model_dump(mode="json", exclude_unset=True),
        make=lambda: Run.from_row(
            service.create_run(
                session,
                runtime.blobs,
                eval_row,
                body,
                tenant_name=caller.tenant_name,
                settings=runtime.settings,
            )
        ),
        reload=reload_owned(session, EvalRunRow, caller.tenant_id, Run.from_row),
    )


@router.get("/evals/{eval_id}/runs", response_model=Page[Run])
def list_runs(
    eval_row: CurrentEval,
    session: DbSession,
    after: After = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Annotated[
        Literal["queued", "in_progress", "completed", "canceled", "failed"] | None,
        Query(description="Only runs of this status."),
    ] = None,
) -> Page[Run]:
    """List an eval's runs."""
    rows, has_more = service.list_runs(
        session, eval_row, after=after, limit=limit, order=order, status=status
    )
    return Page[Run].of([Run.from_row(row) for row in rows], has_more)


@router.get("/evals/{eval_id}/runs/{run_id}", response_model=Run)
def retrieve_run(run: CurrentRun) -> Run:
    """Retrieve a run: its status, result counts, per-criterion results and per-model usage."""
    return Run.from_row(run)


@router.post(
    "/evals/{eval_id}/runs/{run_id}/cancel",
    response_model=Run,
    responses=errors(409, s409="`run_not_cancelable`: the run has already finished."),
)
def cancel_run(run: CurrentRun, session: DbSession) -> Run:
    """Cancel a run: it stops before its next item, and `eval.run.canceled` is sent."""
    return Run.from_row(service.cancel_run(session, run))


@router.delete("/evals/{eval_id}/runs/{run_id}", response_model=RunDeleted)
def delete_run(run: CurrentRun, session: DbSession) -> RunDeleted:
    """Delete a run and its output items (cancel it first to stop it)."""
    answer = RunDeleted(run_id=run.id)
    service.delete_run(session, run)
    return answer


@router.get("/evals/{eval_id}/runs/{run_id}/output_items", response_model=Page[OutputItem])
def list_output_items(
    run: CurrentRun,
    session: DbSession,
    after: After = None,
    limit: Limit = 20,
    order: Order = "asc",
    status: Annotated[
        Literal["pass", "fail"] | None, Query(description="Only passed or failed items.")
    ] = None,
) -> Page[OutputItem]:
    """List a run's output items: each item with its sample and grades, in data source order."""
    rows, has_more = service.list_output_items(
        session, run, after=after, limit=limit, order=order, status=status
    )
    return Page[OutputItem].of([OutputItem.from_row(row) for row in rows], has_more)


@router.get("/evals/{eval_id}/runs/{run_id}/output_items/{output_item_id}", response_model=OutputItem)
def retrieve_output_item(
    output_item_id: Annotated[str, Path(description="The output item's id.")],
    run: CurrentRun,
    session: DbSession,
) -> OutputItem:
    """Retrieve one output item."""
    return OutputItem.from_row(service.get_output_item(session, run, output_item_id))


@router.get(
    "/evals/{eval_id}/runs/{run_id}/compare/{other_run_id}",
    response_model=Comparison,
    responses=errors(409, s409="`run_not_completed`: both runs must have completed."),
)
def compare(
    other_run_id: Annotated[str, Path(description="The run to compare against (the baseline).")],
    run: CurrentRun,
    eval_row: CurrentEval,
    session: DbSession,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1, description="The bootstrap's random seed.")] = 0,
    resamples: Annotated[int, Query(ge=100, le=100_000, description="Bootstrap resamples.")] = 10_000,
    alpha: Annotated[float, Query(gt=0, lt=0.5, description="Significance level of the verdict.")] = 0.05,
) -> Comparison:
    """Compare run `run_id` (the candidate) with `other_run_id` (the baseline) on the items both
    graded: per criterion win/tie/loss counts, the mean score difference with a 95% bootstrap
    confidence interval, an exact two-sided sign test, and a verdict with its evidence."""
    other = service.get_run(session, eval_row, other_run_id)
    return compare_runs(session, eval_row, run, other, seed=seed, resamples=resamples, alpha=alpha)


@router.get(
    "/fine_tuning/jobs/{job_id}/evaluation",
    response_model=JobEvaluation,
    tags=["fine_tuning"],
    responses=errors(404, s404="`evaluation_not_found`: the job has no evaluation (yet)."),
)
def retrieve_job_evaluation(
    job_id: Annotated[str, Path(description="The fine-tuning job's id, `ftjob-…`.")],
    caller: FineTuningCaller,
    session: DbSession,
) -> JobEvaluation:
    """A succeeded job's evaluation: its fine-tuned model against its base model on its validation
    examples (or the `evaluation.file` it named), two runs of one eval and their comparison. It
    appears when the job succeeds; `fine_tuning.job.evaluation.completed` announces the comparison."""
    get_owned(session, JobRow, job_id, tenant_id=caller.tenant_id, not_found=job_not_found)
    return JobEvaluation.from_row(
        job_evaluations.get_for_job(session, tenant_id=caller.tenant_id, job_id=job_id)
    )
