"""API shapes of webhook endpoints, as the `openai` SDK's `client.webhooks` expects them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool

from service.clock import to_unix
from service.webhooks.deliveries import DeliveryView
from service.webhooks.events import EVENT_TYPES
from service.webhooks.models import WebhookAttemptRow, WebhookEndpointRow
from service.webhooks.signing import secret_hint

_TYPES = ", ".join(f"`{t}`" for t in EVENT_TYPES)
EVENT_TYPES_DOC = f"The event types that trigger deliveries to this endpoint; supported: {_TYPES}."
# Documented as enums; the service checks them itself, naming the field (`events.check_event_types`).
EVENT_TYPES_ITEMS: dict[str, JsonValue] = {"items": {"type": "string", "enum": list(EVENT_TYPES)}}
URL_DOC = (
    "The URL that receives deliveries: `https` (`http` too outside production), no user name or "
    "password; in production it may not point to loopback, private, link-local or metadata addresses."
)


class WebhookEndpointCreate(BaseModel):
    """Create a webhook endpoint."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255, description="A human-readable name for the endpoint.")
    url: str = Field(min_length=1, max_length=2048, description=URL_DOC)
    event_types: list[str] = Field(
        min_length=1, description=EVENT_TYPES_DOC, json_schema_extra=EVENT_TYPES_ITEMS
    )


class WebhookEndpointUpdate(BaseModel):
    """Change a webhook endpoint; fields left out (or null) keep their value."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(
        default=None, min_length=1, max_length=255, description="A new human-readable name."
    )
    url: str | None = Field(default=None, min_length=1, max_length=2048, description=URL_DOC)
    event_types: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The complete new set of event types. " + EVENT_TYPES_DOC,
        json_schema_extra=EVENT_TYPES_ITEMS,
    )
    status: Literal["enabled"] | None = Field(
        default=None,
        description="`enabled` re-enables an endpoint that was disabled (410 Gone, or 5 days of "
        "failed deliveries); its failed deliveries can then be redelivered.",
    )


class WebhookEndpointRotateSecret(BaseModel):
    """Replace an endpoint's signing secret."""

    model_config = ConfigDict(extra="forbid")
    keep_old_secret_active_for_24_hours: StrictBool = Field(
        default=False,
        description="Also sign with the previous secret for 24 hours (two `v1,` signatures), so that "
        "receivers can switch without dropping deliveries. Default: the old secret stops at once.",
    )


class WebhookEndpointTest(BaseModel):
    """Send a sample event to an endpoint."""

    model_config = ConfigDict(extra="forbid")
    event_type: str = Field(
        description="The type of the sample event; supported: " + _TYPES + ".",
        json_schema_extra={"enum": list(EVENT_TYPES)},
    )


class WebhookEndpoint(BaseModel):
    """A webhook endpoint. Its signing secret is never shown again after creation or rotation."""

    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    name: str
    url: str
    event_types: list[str]
    signing_secret_hint: str | None = Field(description="`whsec_…` and the secret's last 4 characters.")
    created_at: int
    updated_at: int | None = Field(
        description="Last change of configuration or secret; tests and unchanged updates leave it."
    )
    status: Literal["enabled", "disabled"] = Field(
        description="`disabled` when the receiver answered 410 Gone or every delivery failed for 5 "
        "days; disabled endpoints get no events until an update enables them."
    )
    disabled_reason: str | None = Field(description="Why the endpoint was disabled.")

    @classmethod
    def from_row(cls, row: WebhookEndpointRow) -> WebhookEndpoint:
        return cls(
            id=row.id,
            name=row.name,
            url=row.url,
            event_types=list(row.event_types),
            signing_secret_hint=secret_hint(row.secret),
            created_at=to_unix(row.created_at) or 0,
            updated_at=to_unix(row.updated_at),
            status="disabled" if row.status == "disabled" else "enabled",
            disabled_reason=row.disabled_reason,
        )


class WebhookEndpointWithSecret(WebhookEndpoint):
    """A webhook endpoint with its signing secret, returned by create and rotate_secret only."""

    signing_secret: str = Field(description="`whsec_…`: verify deliveries with it; store it now.")

    @classmethod
    def from_row(cls, row: WebhookEndpointRow) -> WebhookEndpointWithSecret:
        return cls(**WebhookEndpoint.from_row(row).model_dump(), signing_secret=row.secret)


class WebhookEndpointList(BaseModel):
    """A page of endpoints, newest first; pass `last_id` as `after` for the next page."""

    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedWebhookEndpoint(BaseModel):
    """The endpoint is gone, with its pending deliveries."""

    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class WebhookEndpointTestResult(BaseModel):
    """The receiver's answer to a sample event; `success` means the request completed."""

    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    webhook_endpoint_id: str
    event_type: str
    status_code: int = Field(description="The HTTP status the receiver answered with.")
    duration_ms: int = Field(description="How long the request took, until the answer's first bytes.")
    success: Literal[True] = True


class WebhookEventTypeList(BaseModel):
    """The event types endpoints can subscribe to."""

    object: Literal["list"] = "list"
    data: list[str]


class WebhookDeliveryAttempt(BaseModel):
    """One attempt of a delivery: when, what the receiver answered (or the error), how long it took."""

    id: str
    attempted_at: int
    status_code: int | None = Field(description="The receiver's HTTP status; null when it gave none.")
    error: str | None = Field(
        description="Why the attempt failed without a 2xx: `timeout: …`, `connection_error: …`, "
        "`redirect_not_followed`, `blocked_destination`."
    )
    duration_ms: int
    response_body: str | None = Field(description="The start of the receiver's answer (1 KB at most).")

    @classmethod
    def from_row(cls, row: WebhookAttemptRow) -> WebhookDeliveryAttempt:
        return cls(
            id=row.id,
            attempted_at=to_unix(row.attempted_at) or 0,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
            response_body=row.response_body,
        )


class WebhookDelivery(BaseModel):
    """One event sent to one endpoint, with every attempt so far (oldest first)."""

    id: str
    object: Literal["webhook_endpoint.delivery"] = "webhook_endpoint.delivery"
    webhook_endpoint_id: str
    event_id: str = Field(description="The event's id, sent as `webhook-id` on every attempt.")
    event_type: str
    status: Literal["pending", "failing", "succeeded", "failed"] = Field(
        description="`pending` (not tried yet), `failing` (failed so far, will be retried), "
        "`succeeded`, `failed` (attempts exhausted, or the endpoint was disabled)."
    )
    created_at: int = Field(description="When the event was recorded for this endpoint.")
    next_attempt_at: int | None = Field(description="When the next attempt is due; null when finished.")
    last_attempt_at: int | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[WebhookDeliveryAttempt]

    @classmethod
    def from_view(cls, view: DeliveryView) -> WebhookDelivery:
        row = view.delivery
        return cls(
            id=row.id,
            webhook_endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            event_type=view.event.type,
            status=view.status,
            created_at=to_unix(row.created_at) or 0,
            next_attempt_at=to_unix(row.next_attempt_at) if view.status in ("pending", "failing") else None,
            last_attempt_at=to_unix(row.last_attempt_at),
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            attempts=[WebhookDeliveryAttempt.from_row(a) for a in view.attempts],
        )


class WebhookRedeliverFailed(BaseModel):
    """Redeliver every failed delivery of an endpoint since a time."""

    model_config = ConfigDict(extra="forbid")
    failed_since: int = Field(
        ge=0,
        le=253402300799,
        description="Unix seconds: failed deliveries of events recorded at or after this time are sent again.",
    )


class WebhookRedeliveryResult(BaseModel):
    """How many failed deliveries were queued again."""

    object: Literal["webhook_endpoint.redelivery"] = "webhook_endpoint.redelivery"
    webhook_endpoint_id: str
    redelivered: int = Field(description="Deliveries queued again (at most 10 000 per call).")
