from __future__ import annotations

import base64
import time

import openai
import pytest
from openai.types.webhooks import FineTuningJobSucceededWebhookEvent

from service.webhooks.signing import generate_secret, secret_hint, sign, webhook_headers

BODY = b'{"id":"evt_1","object":"event","type":"fine_tuning.job.succeeded","created_at":1,"data":{"id":"ftjob-1"}}'


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_new_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    first, second = generate_secret(), generate_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_the_hint_shows_only_the_prefix_and_last_four_characters() -> None:
    secret = generate_secret()

    assert secret_hint(secret) == f"whsec_…{secret[-4:]}"


def test_the_sdk_unwraps_a_signed_delivery(verifier: openai.OpenAI) -> None:
    secret = generate_secret()
    headers = webhook_headers(msg_id="evt_1", timestamp=int(time.time()), body=BODY, secrets=[secret])

    event = verifier.webhooks.unwrap(BODY, headers, secret=secret)

    assert isinstance(event, FineTuningJobSucceededWebhookEvent)
    assert event.data.id == "ftjob-1"


def test_the_sdk_rejects_a_tampered_body(verifier: openai.OpenAI) -> None:
    secret = generate_secret()
    headers = webhook_headers(msg_id="evt_1", timestamp=int(time.time()), body=BODY, secrets=[secret])

    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.unwrap(BODY.replace(b"ftjob-1", b"ftjob-2"), headers, secret=secret)


def test_the_sdk_rejects_a_signature_made_with_another_secret(verifier: openai.OpenAI) -> None:
    headers = webhook_headers(
        msg_id="evt_1", timestamp=int(time.time()), body=BODY, secrets=[generate_secret()]
    )

    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.unwrap(BODY, headers, secret=generate_secret())


def test_the_sdk_rejects_a_timestamp_older_than_five_minutes(verifier: openai.OpenAI) -> None:
    secret = generate_secret()
    headers = webhook_headers(msg_id="evt_1", timestamp=int(time.time()) - 301, body=BODY, secrets=[secret])

    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.unwrap(BODY, headers, secret=secret)


def test_two_secrets_give_two_signatures_each_of_which_verifies(verifier: openai.OpenAI) -> None:
    new, old = generate_secret(), generate_secret()

    headers = webhook_headers(msg_id="evt_1", timestamp=int(time.time()), body=BODY, secrets=[new, old])

    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        verifier.webhooks.verify_signature(BODY, headers, secret=secret)
