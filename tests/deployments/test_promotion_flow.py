"""The whole flow against the local provider: a job of the followed family succeeds, the
deployment is promoted in the same transaction, and the SDK calling the deployment by name is
answered by the new fine-tuned model."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.chat import ChatCompletionMessageParam

from service.config import Settings
from service.runtime import Runtime
from tests.conftest import bearer
from tests.jobs.conftest import emulator_url, follow, sdk, submit, upload

__all__ = ["emulator_url", "sdk"]

BASE = "gpt-4o-mini-2024-07-18"
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "When was Jonny Whizbang born?"}]


@pytest.fixture
def settings(settings: Settings, emulator_url: str) -> Settings:
    """The local provider, and routes cached far longer than the test runs: what the proxy sees
    after a promotion is what it was told (Redis pub/sub), not a route looked up again on expiry."""
    settings.local_provider_base_url = emulator_url
    settings.route_cache_ttl_s = 600.0
    return settings


def test_a_succeeded_job_of_the_family_is_promoted_and_answers_by_the_deployments_name(
    client: TestClient, runtime: Runtime, sdk: openai.OpenAI, tenant_key: str
) -> None:
    # Given a deployment on the base model that follows the jobs of suffix `jonny`
    created = client.post(
        "/v1/deployments",
        headers=bearer(tenant_key),
        json={"name": "jonny-bot", "targets": [{"model": BASE}], "promotion": {"suffix": "jonny"}},
    )
    assert created.status_code == 200, created.text
    before = sdk.chat.completions.with_raw_response.create(model="jonny-bot", messages=QUESTION)
    assert before.headers["x-ftm-model"] == BASE  # and the API process now has the route cached

    # When such a job runs to success
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix="jonny")
    submit(runtime, job.id)
    done = follow(runtime, job.id)

    # Then the deployment's new version targets the new model, and calling it by name reaches it
    assert done.status == "succeeded"
    deployment = client.get("/v1/deployments/jonny-bot", headers=bearer(tenant_key)).json()
    assert deployment["targets"] == [{"model": done.fine_tuned_model, "weight": 100}]
    raw = sdk.chat.completions.with_raw_response.create(model="jonny-bot", messages=QUESTION)
    assert raw.headers["x-ftm-model"] == done.fine_tuned_model
    assert "1957" in (raw.parse().choices[0].message.content or "")
