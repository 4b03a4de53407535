"""Evals and runs of a tenant: create, read, change, cancel, delete.

Every query is scoped by tenant through `service.tenancy`: another tenant's eval, run or output item
is the same 404 as a missing one. Creating a run checks its data source, loads and checks every item
against the eval's `item_schema`, writes one row per item and queues the run (`evals.run`) in the
same transaction; cancelling marks it `canceled` at once (its worker stops before its next item) and
announces `eval.run.canceled`.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.blobs.store import BlobStore
from service.clock import utcnow
from service.config import Settings
from service.deployments.routing import load_deployment_route
from service.errors import Conflict, InvalidRequest, NotFound
from service.evals import datasource
from service.evals.criteria import check_testing_criteria, uses_model
from service.evals.followups import conclude_later
from service.evals.graders.wordnet import WordNetMissing, wordnet_reader
from service.evals.models import (
    FINAL_RUN_STATUSES,
    EvalRow,
    EvalRunItemRow,
    EvalRunRow,
    ItemStatus,
    RunStatus,
)
from service.evals.schemas import EvalCreate, EvalUpdate, RunCreate
from service.files.service import get_file
from service.ids import new_id
from service.models.service import find_route, model_not_found
from service.outbox import service as outbox
from service.providers.registry import ProviderCatalog
from service.tasks import TaskName
from service.tenancy import Order, get_owned, keyset_page, owned
from service.webhooks.events import EventType
from service.webhooks.service import emit_event

SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array"},
        "output_text": {"type": "string"},
    },
    "required": ["model", "choices"],
}
FINAL_EVENTS = {
    RunStatus.COMPLETED: EventType.EVAL_RUN_SUCCEEDED,
    RunStatus.FAILED: EventType.EVAL_RUN_FAILED,
    RunStatus.CANCELED: EventType.EVAL_RUN_CANCELED,
}


def eval_not_found(eval_id: str) -> NotFound:
    return NotFound(f"No eval with id '{eval_id}'.", param="eval_id", code="eval_not_found")


def run_not_found(run_id: str) -> NotFound:
    return NotFound(f"No eval run with id '{run_id}'.", param="run_id", code="eval_run_not_found")


def output_item_not_found(item_id: str) -> NotFound:
    return NotFound(
        f"No output item with id '{item_id}'.", param="output_item_id", code="output_item_not_found"
    )


def check_data_source_config(value: dict[str, Any]) -> dict[str, Any]:
    kind = value.get("type")
    if kind in ("logs", "stored_completions"):
        raise InvalidRequest(
            f"Data source configs of type '{kind}' are not supported here (they read stored traffic, "
            "which this service does not keep); use 'custom'.",
            param="data_source_config.type",
            code="unsupported_data_source",
        )
    if kind != "custom":
        raise InvalidRequest("'data_source_config.type' must be 'custom'.", param="data_source_config.type")
    item_schema = value.get("item_schema")
    if not isinstance(item_schema, dict):
        raise InvalidRequest(
            "'data_source_config.item_schema' must be a JSON schema object.",
            param="data_source_config.item_schema",
        )
    try:
        jsonschema.Draft202012Validator.check_schema(item_schema)
    except jsonschema.SchemaError as error:
        raise InvalidRequest(
            f"'data_source_config.item_schema' is not a valid JSON schema: {error.message}",
            param="data_source_config.item_schema",
        ) from None
    include_sample = value.get("include_sample_schema", False)
    if not isinstance(include_sample, bool):
        raise InvalidRequest(
            "'data_source_config.include_sample_schema' must be a boolean.",
            param="data_source_config.include_sample_schema",
        )
    properties: dict[str, Any] = {"item": item_schema}
    if include_sample:
        properties["sample"] = SAMPLE_SCHEMA
    return {
        "type": "custom",
        "schema": {"type": "object", "properties": properties, "required": list(properties)},
    }


def item_schema_of(row: EvalRow) -> dict[str, Any]:
    schema: dict[str, Any] = row.data_source_config["schema"]["properties"]["item"]
    return schema


def create_eval(
    session: Session, req: EvalCreate, *, tenant_id: str, tenant_name: str, settings: Settings
) -> EvalRow:
    config = check_data_source_config(req.data_source_config)
    criteria = check_testing_criteria(req.testing_criteria)
    _check_metrics(criteria, settings)
    for model in sorted(uses_model(criteria)):
        check_model(
            session,
            model,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            settings=settings,
            param="testing_criteria",
        )
    row = EvalRow(
        id=new_id("eval_"),
        tenant_id=tenant_id,
        name=req.name,
        metadata_=req.metadata or {},
        data_source_config=config,
        testing_criteria=criteria,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def _check_metrics(criteria: list[dict[str, Any]], settings: Settings) -> None:
    graders = [(f"testing_criteria[{i}]", c) for i, c in enumerate(criteria)]
    graders += [
        (f"testing_criteria[{i}].graders.{name}", sub)
        for i, c in enumerate(criteria)
        for name, sub in c.get("graders", {}).items()
    ]
    for param, grader in graders:
        if grader.get("evaluation_metric") == "meteor":
            try:
                if not settings.evals_wordnet_dir:
                    raise WordNetMissing("meteor needs the WordNet database; set FTM_EVALS_WORDNET_DIR.")
                wordnet_reader(settings.evals_wordnet_dir)
            except WordNetMissing as error:
                raise InvalidRequest(
                    str(error), param=f"{param}.evaluation_metric", code="metric_unavailable"
                ) from None


def check_model(
    session: Session, model: str, *, tenant_id: str, tenant_name: str, settings: Settings, param: str
) -> None:
    """`model` routes for the tenant (a base model, its fine-tuned model, or its deployment)."""
    catalog = ProviderCatalog(settings)
    found = find_route(
        session,
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        model=model,
        catalog=catalog,
    ) or load_deployment_route(
        session,
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        name=model,
        catalog=catalog,
    )
    if found is None:
        error = model_not_found(model)
        error.param = param
        raise error


def get_eval(session: Session, eval_id: str, *, tenant_id: str) -> EvalRow:
    return get_owned(session, EvalRow, eval_id, tenant_id=tenant_id, not_found=eval_not_found)


def list_evals(
    session: Session, *, tenant_id: str, after: str | None, limit: int, order: Order
) -> tuple[list[EvalRow], bool]:
    return keyset_page(
        session,
        owned(EvalRow, tenant_id),
        keys=[EvalRow.created_at, EvalRow.id],
        identity=EvalRow.id,
        after=after,
        limit=limit,
        order=order,
    )


def update_eval(row: EvalRow, req: EvalUpdate) -> EvalRow:
    if req.name is not None:
        row.name = req.name
    if req.metadata is not None:
        row.metadata_ = req.metadata
    return row


def delete_eval(session: Session, row: EvalRow) -> None:
    run_ids = list(session.scalars(select(EvalRunRow.id).where(EvalRunRow.eval_id == row.id)))
    conclude_later(session, row.tenant_id, run_ids)  # a job's evaluation of these runs fails
    session.execute(delete(EvalRunItemRow).where(EvalRunItemRow.eval_id == row.id))
    session.execute(delete(EvalRunRow).where(EvalRunRow.eval_id == row.id))
    session.delete(row)


def create_run(
    session: Session,
    blobs: BlobStore,
    eval_row: EvalRow,
    req: RunCreate,
    *,
    tenant_name: str,
    settings: Settings,
) -> EvalRunRow:
    source = datasource.check_data_source(req.data_source, max_items=settings.evals_max_items)
    if source.inline is not None:
        items, param = source.inline, "data_source.source.content"
    else:
        assert source.file_id is not None
        file = get_file(session, tenant_id=eval_row.tenant_id, file_id=source.file_id)
        with blobs.open(file.blob_key) as stream:
            items = datasource.read_jsonl_items(stream, max_items=settings.evals_max_items)
        param = "data_source.source.id"
    datasource.check_items(items, item_schema_of(eval_row), param=param, inline=source.inline is not None)
    if source.model is not None:
        check_model(
            session,
            source.model,
            tenant_id=eval_row.tenant_id,
            tenant_name=tenant_name,
            settings=settings,
            param="data_source.model",
        )
    now = utcnow()
    run = EvalRunRow(
        id=new_id("evalrun_"),
        tenant_id=eval_row.tenant_id,
        eval_id=eval_row.id,
        name=req.name or f"{source.model or 'jsonl'} run",
        model=source.model,
        status=RunStatus.QUEUED,
        data_source=source.stored,
        metadata_=req.metadata or {},
        item_count=len(items),
        result_counts={"total": len(items), "passed": 0, "failed": 0, "errored": 0},
        per_model_usage=[],
        per_testing_criteria_results=[
            {"testing_criteria": c["name"], "passed": 0, "failed": 0} for c in eval_row.testing_criteria
        ],
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )
    session.add(run)
    session.flush()
    session.add_all(
        EvalRunItemRow(
            id=new_id("outputitem_", 32),
            tenant_id=run.tenant_id,
            eval_id=run.eval_id,
            run_id=run.id,
            datasource_item_id=index,
            item=item.item,
            status=ItemStatus.PENDING if source.kind == "completions" else ItemStatus.SAMPLED,
            sample=None if source.kind == "completions" else jsonl_sample(item.sample),
            results=[],
            created_at=now,
        )
        for index, item in enumerate(items)
    )
    outbox.enqueue(session, TaskName.EVALS_RUN, run_id=run.id)
    return run


def jsonl_sample(sample: dict[str, Any] | None) -> dict[str, Any]:
    """A `jsonl` item's own sample, in the shape a sampled one has (`output_text` filled in from
    `choices[0].message.content` when only that is given)."""
    if sample is None:
        return {"model": "", "input": [], "output": [], "output_text": ""}
    text = sample.get("output_text")
    if not isinstance(text, str):
        choices = sample.get("choices") or [{}]
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        text = (
            message.get("content")
            if isinstance(message, dict) and isinstance(message.get("content"), str)
            else ""
        )
    return {**sample, "output_text": text, "output": [{"role": "assistant", "content": text}], "input": []}


def get_run(session: Session, eval_row: EvalRow, run_id: str) -> EvalRunRow:
    return get_owned(
        session,
        EvalRunRow,
        run_id,
        tenant_id=eval_row.tenant_id,
        not_found=run_not_found,
        where=(EvalRunRow.eval_id == eval_row.id,),
    )


def list_runs(
    session: Session, eval_row: EvalRow, *, after: str | None, limit: int, order: Order, status: str | None
) -> tuple[list[EvalRunRow], bool]:
    query = owned(EvalRunRow, eval_row.tenant_id).where(EvalRunRow.eval_id == eval_row.id)
    if status is not None:
        query = query.where(EvalRunRow.status == status)
    return keyset_page(
        session,
        query,
        keys=[EvalRunRow.created_at, EvalRunRow.id],
        identity=EvalRunRow.id,
        after=after,
        limit=limit,
        order=order,
    )


def finish_run(
    session: Session, run: EvalRunRow, status: RunStatus, *, error: dict[str, str] | None = None
) -> None:
    """Move `run` to a final status and announce it (in the caller's transaction)."""
    now = utcnow()
    run.status = status
    run.error = error
    run.finished_at = now
    run.updated_at = now
    run.lease_token = None
    run.lease_until = None
    run.next_attempt_at = None
    emit_event(session, tenant_id=run.tenant_id, type=FINAL_EVENTS[status], data_id=run.id)
    conclude_later(session, run.tenant_id, [run.id])


def cancel_run(session: Session, run: EvalRunRow) -> EvalRunRow:
    if run.status in FINAL_RUN_STATUSES:
        raise Conflict(f"The run is already {run.status}.", param="run_id", code="run_not_cancelable")
    finish_run(session, run, RunStatus.CANCELED)
    return run


def delete_run(session: Session, run: EvalRunRow) -> None:
    conclude_later(session, run.tenant_id, [run.id])  # a job's evaluation of this run fails
    session.execute(delete(EvalRunItemRow).where(EvalRunItemRow.run_id == run.id))
    session.delete(run)


def get_output_item(session: Session, run: EvalRunRow, item_id: str) -> EvalRunItemRow:
    return get_owned(
        session,
        EvalRunItemRow,
        item_id,
        tenant_id=run.tenant_id,
        not_found=output_item_not_found,
        where=(EvalRunItemRow.run_id == run.id,),
    )


def list_output_items(
    session: Session, run: EvalRunRow, *, after: str | None, limit: int, order: Order, status: str | None
) -> tuple[list[EvalRunItemRow], bool]:
    query = owned(EvalRunItemRow, run.tenant_id).where(EvalRunItemRow.run_id == run.id)
    if status == "pass":
        query = query.where(EvalRunItemRow.status == ItemStatus.DONE, EvalRunItemRow.passed.is_(True))
    elif status == "fail":
        query = query.where(EvalRunItemRow.status == ItemStatus.DONE, EvalRunItemRow.passed.is_(False))
    return keyset_page(
        session,
        query,
        keys=[EvalRunItemRow.datasource_item_id],
        identity=EvalRunItemRow.id,
        after=after,
        limit=limit,
        order=order,
    )


def items_of(session: Session, run_id: str) -> list[EvalRunItemRow]:
    return list(session.scalars(select(EvalRunItemRow).where(EvalRunItemRow.run_id == run_id)))
