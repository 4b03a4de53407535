from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.auth.keys import Scope
from service.auth.models import TenantRow
from service.auth.service import Principal
from service.db import session_scope
from service.errors import InvalidRequest
from service.files import service as files
from service.files.models import ProviderFileRow
from service.jobs import budgets, submission
from service.jobs import service as jobs
from service.jobs.access import PollPolicy, ProviderAccess
from service.jobs.models import JobRow
from service.jobs.schemas import JobCreate
from service.jobs.states import Status
from service.jobs.submission import SubmitOutcome
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.jobs.conftest import upload

BASE = "gpt-4o-mini-2024-07-18"


def _estimate(client: TestClient, key: str, file_id: str) -> dict[str, Any]:
    response = client.post(
        "/v1/fine_tuning/estimates", json={"model": BASE, "training_file": file_id}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _set_budget(client: TestClient, admin_key: str, tenant: str, usd: float | None) -> None:
    response = client.post(
        f"/v1/tenants/{tenant}", json={"monthly_training_budget_usd": usd}, headers=bearer(admin_key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["monthly_training_budget_usd"] == usd


def _tenant_id(runtime: Runtime, name: str) -> str:
    with session_scope(runtime.sessions) as session:
        tenant_id = session.scalar(select(TenantRow.id).where(TenantRow.name == name))
        assert tenant_id is not None
        return tenant_id


def test_a_create_over_the_budget_is_refused_naming_the_budget_and_the_figures(
    client: TestClient, runtime: Runtime, tenant_key: str, admin_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    file_id = upload(sdk, runtime)
    cost = _estimate(client, tenant_key, file_id)["estimated_cost_usd"]
    _set_budget(client, admin_key, "acme", round(cost * 1.5, 6))
    sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "training_budget_exceeded"
    assert error["type"] == "invalid_request_error"
    assert "monthly training budget of $" in error["message"]
    assert f"${cost:.2f}" in error["message"]
    assert len(sdk.fine_tuning.jobs.list().data) == 1


def test_the_estimate_reports_the_budget_what_is_left_and_refuses_to_proceed(
    client: TestClient, runtime: Runtime, tenant_key: str, admin_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    file_id = upload(sdk, runtime)
    cost = _estimate(client, tenant_key, file_id)["estimated_cost_usd"]
    budget = round(cost * 1.5, 6)
    _set_budget(client, admin_key, "acme", budget)
    before = _estimate(client, tenant_key, file_id)
    sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    after = _estimate(client, tenant_key, file_id)

    assert (before["monthly_budget_usd"], before["budget_left_usd"], before["allowed_to_proceed"]) == (
        budget,
        budget,
        True,
    )
    assert after["budget_committed_usd"] == pytest.approx(cost)
    assert after["budget_left_usd"] == pytest.approx(budget - cost)
    assert after["allowed_to_proceed"] is False
    assert any("monthly training budget" in warning for warning in after["warnings"])


def test_without_a_budget_the_estimate_names_none_and_creates_are_not_limited(
    client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    file_id = upload(sdk, runtime)

    for _ in range(3):
        sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    estimate = _estimate(client, tenant_key, file_id)
    assert (estimate["monthly_budget_usd"], estimate["allowed_to_proceed"]) == (None, True)


def test_only_a_platform_admin_sets_a_budget_while_a_tenant_admin_sets_its_policy(
    client: TestClient, runtime: Runtime
) -> None:
    tenant_admin = bearer(make_key(runtime, "acme", frozenset({Scope.ADMIN})))
    policy = client.post("/v1/tenants/acme", json={"personal_data_policy": "redact"}, headers=tenant_admin)

    response = client.post("/v1/tenants/acme", json={"monthly_training_budget_usd": 5}, headers=tenant_admin)

    assert policy.json()["personal_data_policy"] == "redact"

    assert response.status_code == 403
    assert response.json()["error"]["param"] == "monthly_training_budget_usd"


def test_a_negative_budget_is_a_400_naming_the_field(client: TestClient, admin_key: str) -> None:
    response = client.post(
        "/v1/tenants/default", json={"monthly_training_budget_usd": -1}, headers=bearer(admin_key)
    )

    assert response.status_code == 400
    assert "monthly_training_budget_usd" in response.text


def _job(tenant_id: str, created_at: datetime, cost: float) -> JobRow:
    return JobRow(
        id=f"ftjob-budget{created_at.timestamp():.0f}",
        tenant_id=tenant_id,
        provider="local",
        model=BASE,
        training_file="file-x",
        hyperparameters={"n_epochs": "auto"},
        seed=1,
        status=Status.SUCCEEDED.value,
        result_files=[],
        created_at=created_at,
        updated_at=created_at,
        submit_attempts=0,
        estimated_cost_usd=cost,
    )


def test_jobs_of_the_month_before_do_not_count_against_this_months_budget(
    runtime: Runtime, tenant_key: str
) -> None:
    tenant_id = _tenant_id(runtime, "acme")
    last_second_of_january = datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC)
    with session_scope(runtime.sessions) as session:
        session.get_one(TenantRow, tenant_id).monthly_training_budget_usd = 10.0
        session.add(_job(tenant_id, last_second_of_january, 8.0))

    with session_scope(runtime.sessions) as session:
        in_january = budgets.budget_of(
            session, tenant_id, last_second_of_january + timedelta(milliseconds=500)
        )
        in_february = budgets.budget_of(session, tenant_id, datetime(2027, 2, 1, tzinfo=UTC))
        with pytest.raises(InvalidRequest):
            budgets.check(session, tenant_id, 3.0, last_second_of_january)
        budgets.check(session, tenant_id, 3.0, datetime(2027, 2, 1, tzinfo=UTC))

    assert in_january is not None
    assert in_february is not None
    assert (in_january.committed_usd, in_january.left_usd) == (8.0, 2.0)
    assert (in_february.committed_usd, in_february.left_usd) == (0.0, 10.0)


def test_the_month_is_the_utc_calendar_month() -> None:
    tokyo = timezone(timedelta(hours=9))
    march_in_tokyo_february_in_utc = datetime(2027, 3, 1, 8, 0, tzinfo=tokyo)

    assert budgets.month_start(march_in_tokyo_february_in_utc) == datetime(2027, 2, 1, tzinfo=UTC)
    assert budgets.month_start(datetime(2027, 3, 1, 9, 0, tzinfo=tokyo)) == datetime(2027, 3, 1, tzinfo=UTC)


def test_concurrent_creates_do_not_both_squeeze_under_the_budget(
    client: TestClient, runtime: Runtime, tenant_key: str, admin_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    file_id = upload(sdk, runtime)
    cost = _estimate(client, tenant_key, file_id)["estimated_cost_usd"]
    _set_budget(client, admin_key, "acme", round(cost * 1.5, 6))
    caller = Principal(
        tenant_id=_tenant_id(runtime, "acme"), tenant_name="acme", key_id="k", scopes=frozenset()
    )
    request = JobCreate(model=BASE, training_file=file_id)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def create() -> None:
        start.wait()
        try:
            with session_scope(runtime.sessions) as session:
                jobs.create_job(
                    session, request, caller=caller, providers=runtime.providers, blobs=runtime.blobs
                )
            outcomes.append("created")
        except InvalidRequest as refused:
            outcomes.append(refused.code or "")

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["training_budget_exceeded"] * 5
    assert len(sdk.fine_tuning.jobs.list().data) == 1


def test_a_job_created_before_its_file_was_validated_fails_over_budget_before_any_upload(
    client: TestClient, runtime: Runtime, tenant_key: str, admin_key: str
) -> None:
    sdk = sdk_for(client, tenant_key)
    _set_budget(client, admin_key, "acme", 0.000001)
    file_id = upload(sdk, runtime, validate=False)
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)  # its cost is not known yet
    files.validate_file(runtime.sessions, runtime.blobs, file_id)

    outcome = submission.submit(
        runtime.sessions,
        job.id,
        ProviderAccess(runtime.providers, runtime.blobs, PollPolicy.every(timedelta(0))),
    )

    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert outcome == SubmitOutcome.FAILED
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.param) == ("training_budget_exceeded", "training_file")
    with session_scope(runtime.sessions) as session:
        assert session.scalars(select(ProviderFileRow)).all() == []
