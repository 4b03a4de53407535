"""`POST /v1/webhook_endpoints/{id}/test` and secret rotation, against a real local receiver."""

from __future__ import annotations

import socket
from typing import Final

import openai
import pytest

from tests.webhooks.conftest import Receiver

SUCCEEDED: Final = "fine_tuning.job.succeeded"


def test_a_test_event_reaches_the_receiver_signed_and_its_status_is_reported(
    sdk: openai.OpenAI, receiver: Receiver, verifier: openai.OpenAI
) -> None:
    created = sdk.webhooks.create(name="jobs", url=receiver.url, event_types=[SUCCEEDED])
    receiver.status = 202

    result = sdk.webhooks.test(created.id, event_type="fine_tuning.job.failed")

    assert (result.status_code, result.success, result.webhook_endpoint_id) == (202, True, created.id)
    assert result.event_type == "fine_tuning.job.failed"
    [request] = receiver.requests
    event = verifier.webhooks.unwrap(request.body, request.headers, secret=created.signing_secret)
    assert event.type == "fine_tuning.job.failed"
    assert event.id == request.headers["webhook-id"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "finetune-manager-webhooks/1.0"


def test_the_receivers_error_status_is_reported_not_raised(sdk: openai.OpenAI, receiver: Receiver) -> None:
    created = sdk.webhooks.create(name="jobs", url=receiver.url, event_types=[SUCCEEDED])
    receiver.status = 500

    result = sdk.webhooks.test(created.id, event_type=SUCCEEDED)

    assert result.status_code == 500


def test_a_test_to_an_unreachable_receiver_is_a_400(sdk: openai.OpenAI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    created = sdk.webhooks.create(
        name="jobs", url=f"http://127.0.0.1:{closed_port}/hooks", event_types=[SUCCEEDED]
    )

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.webhooks.test(created.id, event_type=SUCCEEDED)

    assert raised.value.code == "webhook_test_failed"


def test_a_test_with_an_unsupported_event_type_is_a_400_naming_event_type(
    sdk: openai.OpenAI, receiver: Receiver
) -> None:
    created = sdk.webhooks.create(name="jobs", url=receiver.url, event_types=[SUCCEEDED])

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.webhooks.test(created.id, event_type="batch.completed")

    assert raised.value.param == "event_type"
    assert receiver.requests == []


def test_after_rotation_only_the_new_secret_verifies(
    sdk: openai.OpenAI, receiver: Receiver, verifier: openai.OpenAI
) -> None:
    created = sdk.webhooks.create(name="jobs", url=receiver.url, event_types=[SUCCEEDED])

    rotated = sdk.webhooks.rotate_secret(created.id)
    sdk.webhooks.test(created.id, event_type=SUCCEEDED)

    [request] = receiver.requests
    assert rotated.signing_secret != created.signing_secret
    assert rotated.signing_secret_hint == f"whsec_…{rotated.signing_secret[-4:]}"
    verifier.webhooks.verify_signature(request.body, request.headers, secret=rotated.signing_secret)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.verify_signature(request.body, request.headers, secret=created.signing_secret)


def test_a_rotation_that_keeps_the_old_secret_signs_with_both(
    sdk: openai.OpenAI, receiver: Receiver, verifier: openai.OpenAI
) -> None:
    created = sdk.webhooks.create(name="jobs", url=receiver.url, event_types=[SUCCEEDED])

    rotated = sdk.webhooks.rotate_secret(created.id, keep_old_secret_active_for_24_hours=True)
    sdk.webhooks.test(created.id, event_type=SUCCEEDED)

    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (rotated.signing_secret, created.signing_secret):
        verifier.webhooks.verify_signature(request.body, request.headers, secret=secret)
