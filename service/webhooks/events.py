"""Webhook event types and the envelope sent for each event.

The envelope is OpenAI's thin one: `{"id": "evt_…", "object": "event", "type": "…",
"created_at": <unix>, "data": {"id": "ftjob-…"}}`; receivers fetch the object by `data.id`. It is
rendered from the stored event with a fixed key order and separators, so every attempt of a
delivery sends the same bytes.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from service.clock import to_unix
from service.errors import InvalidRequest
from service.ids import new_id
from service.webhooks.models import WebhookEventRow


class EventType(StrEnum):
    """The events endpoints can subscribe to: OpenAI's names for jobs and eval runs, and the
    service's own for files, running jobs and deployments."""

    FILE_PROCESSED = "file.processed"
    FILE_FAILED = "file.failed"
    FINE_TUNING_JOB_RUNNING = "fine_tuning.job.running"
    FINE_TUNING_JOB_SUCCEEDED = "fine_tuning.job.succeeded"
    FINE_TUNING_JOB_FAILED = "fine_tuning.job.failed"
    FINE_TUNING_JOB_CANCELLED = "fine_tuning.job.cancelled"
    FINE_TUNING_JOB_EVALUATION_COMPLETED = "fine_tuning.job.evaluation.completed"
    FINE_TUNING_JOB_EVALUATION_FAILED = "fine_tuning.job.evaluation.failed"
    EVAL_RUN_SUCCEEDED = "eval.run.succeeded"
    EVAL_RUN_FAILED = "eval.run.failed"
    EVAL_RUN_CANCELED = "eval.run.canceled"
    DEPLOYMENT_UPDATED = "deployment.updated"
    DEPLOYMENT_DELETED = "deployment.deleted"


# What each event is about, and how `data.id` names it: (summary, object, example id).
EVENT_DOCS: dict[str, tuple[str, str, str]] = {
    EventType.FILE_PROCESSED: ("A file passed validation and can be used.", "file", "file-abc123"),
    EventType.FILE_FAILED: ("A file failed validation; its `status_details` say why.", "file", "file-abc123"),
    EventType.FINE_TUNING_JOB_RUNNING: (
        "A fine-tuning job started running (or resumed after a pause).",
        "fine-tuning job",
        "ftjob-abc123",
    ),
    EventType.FINE_TUNING_JOB_SUCCEEDED: ("A fine-tuning job succeeded.", "fine-tuning job", "ftjob-abc123"),
    EventType.FINE_TUNING_JOB_FAILED: ("A fine-tuning job failed.", "fine-tuning job", "ftjob-abc123"),
    EventType.FINE_TUNING_JOB_CANCELLED: (
        "A fine-tuning job was cancelled.",
        "fine-tuning job",
        "ftjob-abc123",
    ),
    EventType.FINE_TUNING_JOB_EVALUATION_COMPLETED: (
        "A succeeded job's evaluation (its fine-tuned model against its base model) is complete; "
        "`data.id` is the job, and `GET /v1/fine_tuning/jobs/{id}/evaluation` has the comparison.",
        "fine-tuning job",
        "ftjob-abc123",
    ),
    EventType.FINE_TUNING_JOB_EVALUATION_FAILED: (
        "A succeeded job's evaluation could not be made (its `error` says why); `data.id` is the job.",
        "fine-tuning job",
        "ftjob-abc123",
    ),
    EventType.EVAL_RUN_SUCCEEDED: ("An eval run finished.", "eval run", "evalrun_abc123"),
    EventType.EVAL_RUN_FAILED: ("An eval run failed.", "eval run", "evalrun_abc123"),
    EventType.EVAL_RUN_CANCELED: ("An eval run was canceled.", "eval run", "evalrun_abc123"),
    EventType.DEPLOYMENT_UPDATED: (
        "A deployment was created, changed or rolled back (a new version is current); `data.id` is its name.",
        "deployment",
        "support-bot",
    ),
    EventType.DEPLOYMENT_DELETED: (
        "A deployment was deleted; `data.id` is its name.",
        "deployment",
        "support-bot",
    ),
}


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)


def check_event_type(value: str, *, param: str) -> str:
    if value not in EVENT_TYPES:
        raise InvalidRequest(
            f"Unsupported event type '{value}'; supported: {', '.join(EVENT_TYPES)}.",
            param=param,
            code="invalid_value",
        )
    return value


def check_event_types(values: list[str], *, param: str = "event_types") -> list[str]:
    """The types, each once, in the order given; 400 naming `param` when empty or unknown."""
    if not values:
        raise InvalidRequest("Subscribe to at least one event type.", param=param, code="invalid_value")
    return list(dict.fromkeys(check_event_type(value, param=param) for value in values))


def render(*, event_id: str, type: str, created_at: int, data: dict[str, Any]) -> bytes:
    envelope = {"id": event_id, "object": "event", "type": type, "created_at": created_at, "data": data}
    return json.dumps(envelope, separators=(",", ":")).encode()


def render_event(event: WebhookEventRow) -> bytes:
    return render(
        event_id=event.id, type=event.type, created_at=to_unix(event.created_at) or 0, data=event.data
    )


def sample_event(type: str, *, created_at: int) -> tuple[str, bytes]:
    """A test event of `type` about a made-up object of its kind: (event id, body)."""
    event_id = new_id("evt_")
    example = EVENT_DOCS[type][2]
    made_up = "sample" if type.startswith("deployment.") else new_id(example.split("abc123")[0])
    return event_id, render(event_id=event_id, type=type, created_at=created_at, data={"id": made_up})
