from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db import session_scope
from service.outbox.models import OutboxRow
from service.runtime import Runtime
from tests.conftest import make_key, sdk_for
from tests.factories import chat_example, make_jsonl
from tests.jobs.conftest import upload

BASE = "gpt-4o-mini-2024-07-18"


def test_creating_a_job_records_it_and_queues_its_submission(sdk: openai.OpenAI, runtime: Runtime) -> None:
    file_id = upload(sdk, runtime)

    job = sdk.fine_tuning.jobs.create(
        model=BASE, training_file=file_id, suffix="jonny", metadata={"team": "a"}
    )

    with session_scope(runtime.sessions) as session:
        queued = [(r.task_name, r.kwargs) for r in session.scalars(select(OutboxRow).order_by(OutboxRow.id))]
    assert (job.status, job.model, job.metadata) == ("validating_files", BASE, {"team": "a"})
    assert ("jobs.submit", {"job_id": job.id}) in queued
    assert sdk.fine_tuning.jobs.retrieve(job.id).id == job.id


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"model": "gpt-5-super"}, "model"),
        ({"training_file": "file-missing"}, "training_file"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"seed": -1}, "seed"),
        ({"metadata": {f"k{n}": "v" for n in range(16)}}, "metadata"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter_and_create_nothing(
    sdk: openai.OpenAI, runtime: Runtime, overrides: dict[str, object], param: str
) -> None:
    file_id = upload(sdk, runtime)
    body: dict[str, object] = {"model": BASE, "training_file": file_id, **overrides}

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(**body)  # type: ignore[arg-type]

    assert raised.value.param == param
    assert sdk.fine_tuning.jobs.list().data == []


def test_a_file_that_failed_validation_cannot_be_trained_on(sdk: openai.OpenAI, runtime: Runtime) -> None:
    bad = upload(sdk, runtime, make_jsonl([chat_example("q", "a")] * 2))

    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file=bad)

    assert raised.value.param == "training_file"
    assert "at least 10" in raised.value.message


def test_list_filters_by_metadata_and_pages_newest_first(sdk: openai.OpenAI, runtime: Runtime) -> None:
    file_id = upload(sdk, runtime)
    jobs = [
        sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id, metadata={"team": team})
        for team in "aba"
    ]

    team_a = [j.id for j in sdk.fine_tuning.jobs.list(metadata={"team": "a"})]
    first_page = sdk.fine_tuning.jobs.list(limit=2)

    assert team_a == [jobs[2].id, jobs[0].id]
    assert ([j.id for j in first_page.data], first_page.has_more) == ([jobs[2].id, jobs[1].id], True)


def test_a_job_cancelled_before_submission_is_cancelled_at_once(sdk: openai.OpenAI, runtime: Runtime) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))

    cancelled = sdk.fine_tuning.jobs.cancel(job.id)

    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.cancel(job.id)


def test_another_tenants_job_is_a_404_on_every_route(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime))
    other = sdk_for(client, make_key(runtime, "other"), strict=False)

    for call in (
        other.fine_tuning.jobs.retrieve,
        other.fine_tuning.jobs.cancel,
        other.fine_tuning.jobs.list_events,
        other.fine_tuning.jobs.checkpoints.list,
        other.fine_tuning.jobs.pause,
    ):
        with pytest.raises(openai.NotFoundError):
            call(job.id)
    assert other.fine_tuning.jobs.list().data == []
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "validating_files"


def test_another_tenants_file_cannot_be_trained_on(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime
) -> None:
    file_id = upload(sdk, runtime)
    other = sdk_for(client, make_key(runtime, "other"), strict=False)

    with pytest.raises(openai.BadRequestError) as raised:
        other.fine_tuning.jobs.create(model=BASE, training_file=file_id)

    assert raised.value.param == "training_file"


def test_integrations_are_kept_and_shown(sdk: openai.OpenAI, runtime: Runtime) -> None:
    wandb = {"type": "wandb", "wandb": {"project": "jonny"}}

    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), integrations=[wandb])  # type: ignore[list-item]

    assert job.integrations is not None
    assert job.integrations[0].wandb.project == "jonny"
