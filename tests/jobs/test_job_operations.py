"""Every job operation a platform team needs beyond OpenAI's: list filters that combine with
paging, the metrics series of a job, and a retry of a failed or cancelled job."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import openai
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.clock import to_unix, utcnow
from service.db import session_scope
from service.jobs.models import JobRow
from service.runtime import Runtime
from tests.conftest import bearer
from tests.jobs.conftest import follow, submit, upload

BASE = "gpt-4o-mini-2024-07-18"
OTHER = "gpt-4.1-mini-2025-04-14"


def listed(client: TestClient, key: str, **params: Any) -> list[str]:
    """Every id the filtered list gives, following its pages two at a time."""
    ids: list[str] = []
    after: str | None = None
    while True:
        page = client.get(
            "/v1/fine_tuning/jobs",
            headers=bearer(key),
            params={**params, "limit": 2, **({"after": after} if after else {})},
        )
        assert page.status_code == 200, page.text
        body = page.json()
        ids += [job["id"] for job in body["data"]]
        if not body["has_more"]:
            return ids
        after = body["data"][-1]["id"]


def test_list_filters_combine_with_each_other_and_with_paging(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, tenant_key: str
) -> None:
    training_file = upload(sdk, runtime)
    mini = [sdk.fine_tuning.jobs.create(model=BASE, training_file=training_file).id for _ in range(3)]
    other = [
        sdk.fine_tuning.jobs.create(model=OTHER, training_file=training_file, metadata={"team": "search"}).id
        for _ in range(2)
    ]
    sdk.fine_tuning.jobs.cancel(mini[0])
    long_ago = utcnow() - timedelta(days=30)
    with session_scope(runtime.sessions) as session:
        session.execute(update(JobRow).where(JobRow.id == mini[1]).values(created_at=long_ago))

    assert set(listed(client, tenant_key, model=BASE)) == set(mini)
    assert listed(client, tenant_key, status="cancelled") == [mini[0]]
    assert set(listed(client, tenant_key, status="validating_files", model=BASE)) == {mini[1], mini[2]}
    cutoff = to_unix(utcnow() - timedelta(days=1))
    assert listed(client, tenant_key, created_before=cutoff) == [mini[1]]
    assert mini[1] not in listed(client, tenant_key, created_after=cutoff)
    assert set(listed(client, tenant_key, **{"metadata[team]": "search", "model": OTHER})) == set(other)
    assert listed(client, tenant_key, **{"metadata[team]": "search", "model": BASE}) == []

    refused = client.get("/v1/fine_tuning/jobs", headers=bearer(tenant_key), params={"status": "sleeping"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "status"


def test_metrics_are_a_series_by_step_that_agrees_with_the_result_file(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, tenant_key: str
) -> None:
    training_file = upload(sdk, runtime)
    validation_file = upload(sdk, runtime)
    job = sdk.fine_tuning.jobs.create(
        model=BASE, training_file=training_file, validation_file=validation_file
    )
    submit(runtime, job.id)
    done = follow(runtime, job.id)
    assert done.status == "succeeded"

    metrics = client.get(f"/v1/fine_tuning/jobs/{job.id}/metrics", headers=bearer(tenant_key)).json()

    steps = metrics["data"]
    assert metrics["total_steps"] == len(steps) > 1
    assert [row["step"] for row in steps] == list(range(1, len(steps) + 1))
    assert all(row["train_loss"] is not None and row["valid_loss"] is not None for row in steps)
    assert any(row["full_valid_loss"] is not None for row in steps)
    result = sdk.files.content(done.result_files[0]).text
    for figures, row in zip(csv.DictReader(io.StringIO(result)), steps, strict=True):
        assert float(figures["train_loss"]) == row["train_loss"]
        assert float(figures["train_accuracy"]) == row["train_mean_token_accuracy"]
    assert metrics["trained_tokens"] == done.trained_tokens


def test_a_cancelled_job_is_retried_as_a_new_job_with_the_same_request(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, tenant_key: str
) -> None:
    training_file = upload(sdk, runtime)
    job = sdk.fine_tuning.jobs.create(
        model=BASE,
        training_file=training_file,
        suffix="jonny",
        metadata={"team": "support"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    active = client.post(f"/v1/fine_tuning/jobs/{job.id}/retry", headers=bearer(tenant_key))
    assert active.status_code == 409
    assert active.json()["error"]["code"] == "job_not_retryable"
    sdk.fine_tuning.jobs.cancel(job.id)

    retried = client.post(f"/v1/fine_tuning/jobs/{job.id}/retry", headers=bearer(tenant_key))

    assert retried.status_code == 200, retried.text
    again = sdk.fine_tuning.jobs.retrieve(retried.json()["id"])
    assert again.id != job.id
    assert again.status == "validating_files"
    assert (again.model, again.training_file) == (BASE, training_file)
    with session_scope(runtime.sessions) as session:
        assert session.get_one(JobRow, again.id).suffix == "jonny"
    assert again.metadata == {"team": "support"}
    assert again.method is not None
    assert again.method.supervised is not None
    assert again.method.supervised.hyperparameters is not None
    assert again.method.supervised.hyperparameters.n_epochs == 2
    events = [event.message for event in sdk.fine_tuning.jobs.list_events(again.id)]
    assert f"Retry of fine-tuning job {job.id}" in events
    submit(runtime, again.id)
    assert follow(runtime, again.id).status == "succeeded"
