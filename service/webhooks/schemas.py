"""API shapes of webhook endpoints, as the `openai` SDK's `client.webhooks` expects them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool

from service.clock import to_unix
from service.webhooks.events import EVENT_TYPES
from service.webhooks.models import WebhookEndpointRow
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
        description="`disabled` when the receiver answered 410 Gone; disabled endpoints get no events."
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
    success: Literal[True] = True


class WebhookEventTypeList(BaseModel):
    """The event types endpoints can subscribe to."""

    object: Literal["list"] = "list"
    data: list[str]
