"""Webhooks a provider sends us (OpenAI's `fine_tuning.job.*`), verified with the provider's
webhook secret through the SDK's Standard Webhooks check (signature and a 5-minute tolerance)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import openai

from service.errors import InvalidRequest

SIGNATURE_PARAM = "webhook-signature"


@dataclass(frozen=True)
class ProviderWebhook:
    """A verified delivery: its `webhook-id` (the same on every retry), the event's type, and for a
    fine-tuning event the provider's job id."""

    webhook_id: str
    type: str
    job_id: str | None


@cache
def _verifier() -> openai.OpenAI:
    # Verifying makes no request; the client only carries the check.
    return openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1", max_retries=0)


def verify_webhook(payload: bytes, headers: Mapping[str, str], *, secret: str) -> ProviderWebhook:
    """The delivery, if its signature matches `secret` and it is recent; a 400 otherwise."""
    try:
        _verifier().webhooks.verify_signature(payload, dict(headers), secret=secret)
    except (openai.InvalidWebhookSignatureError, ValueError) as error:
        raise InvalidRequest(
            f"The webhook's signature does not verify: {error}",
            param=SIGNATURE_PARAM,
            code="invalid_webhook_signature",
        ) from None
    try:
        event = json.loads(payload)
        event_type = event["type"]
        data = event.get("data") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidRequest("The webhook's body is not an event.", code="invalid_webhook_event") from None
    job_id = (
        data.get("id") if isinstance(event_type, str) and event_type.startswith("fine_tuning.job.") else None
    )
    return ProviderWebhook(
        webhook_id=headers.get("webhook-id", ""),
        type=str(event_type),
        job_id=job_id if isinstance(job_id, str) else None,
    )
