"""A tenant's own credentials at the local provider: its jobs (their files, creates, refreshes and
cancels) use its key, and the organization and project ids it set; another tenant's use the
operator's; once deleted, its jobs made with them fail rather than being followed with the
operator's key, and its new jobs go back to the operator's."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

from emulator.app import create_app as create_emulator
from emulator.settings import EmulatorSettings
from service.config import Settings
from service.db import session_scope
from service.jobs import refresh
from service.jobs.models import JobRow
from service.jobs.submission import SubmitOutcome
from service.runtime import Runtime
from tests.conftest import bearer, make_key, sdk_for
from tests.jobs.conftest import access, follow, submit, upload
from tests.servers import serve

BASE = "gpt-4o-mini-2024-07-18"
ACME_KEY = "sk-acme-own-account-0001"
OPERATOR = "…ocal"  # how the emulator names a caller with the operator's key, sk-local
ACME = "…0001"
CREDENTIALS = "/v1/tenants/acme/providers/local/credentials"


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The local provider, accepting the operator's key and acme's own (another account's)."""
    settings = EmulatorSettings(
        data_dir=tmp_path_factory.mktemp("emulator"),
        api_key="sk-local",
        other_api_keys=[ACME_KEY],
        seconds_per_step=0.005,
        tick_seconds=0.02,
    )
    with serve(create_emulator(settings)) as url:
        yield f"{url}/v1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.credentials_key = SecretStr(Fernet.generate_key().decode())
    return settings


@pytest.fixture
def acme_credentials(client: TestClient, admin_key: str, tenant_key: str) -> dict[str, str]:
    response = client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    shown: dict[str, str] = response.json()
    return shown


def callers(emulator: httpx.Client) -> dict[str, dict[str, int]]:
    answer: dict[str, dict[str, int]] = emulator.get("/_emulator/callers").json()
    return answer


def create_job(sdk: openai.OpenAI, runtime: Runtime) -> str:
    return sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime)).id


def test_a_job_of_a_tenant_with_its_own_credentials_is_made_with_its_key(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, acme_credentials: dict[str, str]
) -> None:
    job_id = create_job(sdk, runtime)

    outcome = submit(runtime, job_id)

    seen = callers(emulator)
    assert outcome == SubmitOutcome.SUBMITTED
    assert seen[ACME]["POST /v1/files"] == 1
    assert seen[ACME]["POST /v1/fine_tuning/jobs"] == 1
    assert OPERATOR not in seen
    with session_scope(runtime.sessions) as session:
        assert session.get_one(JobRow, job_id).credentials_id == acme_credentials["id"]


def test_another_tenant_still_uses_the_operators_key(
    client: TestClient, runtime: Runtime, emulator: httpx.Client, acme_credentials: dict[str, str]
) -> None:
    globex = sdk_for(client, make_key(runtime, "globex"))

    submit(runtime, create_job(globex, runtime))

    seen = callers(emulator)
    assert seen[OPERATOR]["POST /v1/fine_tuning/jobs"] == 1
    assert ACME not in seen


def test_the_organization_and_project_set_travel_with_the_key(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, admin_key: str
) -> None:
    body = {"api_key": ACME_KEY, "organization": "org-acme", "project": "proj_acme"}
    client.put(CREDENTIALS, json=body, headers=bearer(admin_key))

    submit(runtime, create_job(sdk, runtime))

    assert callers(emulator)[f"{ACME} org=org-acme pro=proj_acme"]["POST /v1/fine_tuning/jobs"] == 1


def test_the_job_is_followed_to_its_end_with_the_credentials_it_was_made_with(
    sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, acme_credentials: dict[str, str]
) -> None:
    job_id = create_job(sdk, runtime)
    submit(runtime, job_id)

    job = follow(runtime, job_id)

    seen = callers(emulator)
    assert job.status == "succeeded"
    assert seen[ACME]["GET /v1/fine_tuning/jobs/{fine_tuning_job_id}"] >= 1
    assert OPERATOR not in seen


def test_a_file_copied_to_the_operators_account_is_copied_again_to_the_tenants(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, emulator: httpx.Client, admin_key: str
) -> None:
    file_id = upload(sdk, runtime)
    submit(runtime, sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id).id)
    client.put(CREDENTIALS, json={"api_key": ACME_KEY}, headers=bearer(admin_key))

    submit(runtime, sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id).id)

    seen = callers(emulator)
    assert seen[OPERATOR]["POST /v1/files"] == 1
    assert seen[ACME]["POST /v1/files"] == 1


def test_after_the_credentials_are_deleted_their_job_fails_and_is_not_polled_with_the_operators_key(
    client: TestClient,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    admin_key: str,
    acme_credentials: dict[str, str],
) -> None:
    job_id = create_job(sdk, runtime)
    submit(runtime, job_id)
    client.delete(CREDENTIALS, headers=bearer(admin_key))
    emulator.delete("/_emulator/stats")

    refresh.refresh(runtime.sessions, job_id, access(runtime))

    job = sdk.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.code == "provider_credentials_deleted"
    assert callers(emulator) == {}


def test_after_the_credentials_are_deleted_the_tenants_new_jobs_use_the_operators_key(
    client: TestClient,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    admin_key: str,
    acme_credentials: dict[str, str],
) -> None:
    client.delete(CREDENTIALS, headers=bearer(admin_key))

    submit(runtime, create_job(sdk, runtime))

    seen = callers(emulator)
    assert seen[OPERATOR]["POST /v1/fine_tuning/jobs"] == 1
    assert ACME not in seen


def test_a_job_waiting_to_be_submitted_fails_when_its_credentials_are_deleted(
    client: TestClient,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    admin_key: str,
    acme_credentials: dict[str, str],
) -> None:
    job_id = create_job(sdk, runtime)
    client.delete(CREDENTIALS, headers=bearer(admin_key))

    outcome = submit(runtime, job_id)

    assert outcome == SubmitOutcome.FAILED
    assert sdk.fine_tuning.jobs.retrieve(job_id).error.code == "provider_credentials_deleted"  # type: ignore[union-attr]
    assert callers(emulator) == {}


def test_cancelling_a_job_whose_credentials_were_deleted_is_a_409(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, admin_key: str, acme_credentials: dict[str, str]
) -> None:
    job_id = create_job(sdk, runtime)
    submit(runtime, job_id)
    client.delete(CREDENTIALS, headers=bearer(admin_key))

    with pytest.raises(openai.ConflictError) as refused:
        sdk.fine_tuning.jobs.cancel(job_id)

    assert refused.value.code == "provider_credentials_deleted"


def test_verify_refuses_a_key_the_provider_refuses_and_stores_nothing(
    client: TestClient, admin_key: str, tenant_key: str
) -> None:
    body = {"api_key": "sk-not-an-account-of-the-provider", "verify": True}

    refused = client.put(CREDENTIALS, json=body, headers=bearer(admin_key))
    shown = client.get(CREDENTIALS, headers=bearer(admin_key))

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("provider_credentials_refused", "api_key")
    assert "Incorrect API key provided" in error["message"]
    assert shown.status_code == 404


def test_verify_accepts_a_key_the_provider_accepts(
    client: TestClient, admin_key: str, tenant_key: str, emulator: httpx.Client
) -> None:
    response = client.put(CREDENTIALS, json={"api_key": ACME_KEY, "verify": True}, headers=bearer(admin_key))

    assert response.status_code == 200
    assert callers(emulator)[ACME] == {"GET /v1/models": 1}


def test_a_model_trained_with_the_tenants_credentials_is_deleted_with_them(
    client: TestClient,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    admin_key: str,
    acme_credentials: dict[str, str],
) -> None:
    job_id = create_job(sdk, runtime)
    submit(runtime, job_id)
    model = follow(runtime, job_id).fine_tuned_model
    assert model is not None
    emulator.delete("/_emulator/stats")

    sdk.models.delete(model)

    assert callers(emulator) == {ACME: {"DELETE /v1/models/{model:path}": 1}}


def test_a_model_whose_credentials_were_deleted_is_not_deleted_with_the_operators_key(
    client: TestClient,
    sdk: openai.OpenAI,
    runtime: Runtime,
    emulator: httpx.Client,
    admin_key: str,
    acme_credentials: dict[str, str],
) -> None:
    job_id = create_job(sdk, runtime)
    submit(runtime, job_id)
    model = follow(runtime, job_id).fine_tuned_model
    assert model is not None
    client.delete(CREDENTIALS, headers=bearer(admin_key))
    emulator.delete("/_emulator/stats")

    with pytest.raises(openai.ConflictError) as refused:
        sdk.models.delete(model)

    assert refused.value.code == "provider_credentials_deleted"
    assert callers(emulator) == {}
    assert model in [listed.id for listed in sdk.models.list()]
