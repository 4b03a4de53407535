from __future__ import annotations

from datetime import timedelta
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.files import encodings
from service.files import service as files
from service.files.models import FileRow
from service.files.report import ValidationReport
from service.jobs import refresh, submission
from service.jobs.access import PollPolicy, ProviderAccess
from service.jobs.costs import default_epochs, training_cost
from service.jobs.models import JobRow
from service.models.prices import training_price
from service.runtime import Runtime
from tests.conftest import bearer
from tests.factories import JONNY_QA, chat_example, make_jsonl
from tests.jobs.conftest import upload

BASE = "gpt-4o-mini-2024-07-18"
COMPLETIONS = make_jsonl([{"prompt": f"{q} ->", "completion": f" {a}"} for q, a in JONNY_QA])


def _estimate(client: TestClient, key: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/fine_tuning/estimates", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _report(runtime: Runtime, file_id: str) -> ValidationReport:
    with session_scope(runtime.sessions) as session:
        row = session.get(FileRow, file_id)
        assert row is not None
        return ValidationReport.model_validate(row.report)


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [(1, 25), (3, 25), (10, 10), (13, 7), (33, 3), (34, 3), (40, 3), (8_333, 3), (8_334, 2), (30_000, 1)],
)
def test_auto_epochs_follow_openais_heuristic(examples: int, epochs: int) -> None:
    assert default_epochs(examples) == epochs


def test_the_cost_reproduces_openais_worked_examples() -> None:
    mini = training_price("gpt-4o-mini-2024-07-18", {})
    turbo = training_price("gpt-3.5-turbo-0125", {})

    assert mini is not None
    assert turbo is not None
    assert training_cost(100_000, 3, mini) == pytest.approx(0.90)
    assert training_cost(100_000, 3, turbo) == pytest.approx(2.40)


def test_the_price_setting_overrides_and_adds_to_the_table() -> None:
    assert training_price(BASE, {BASE: 5.0}) == 5.0
    assert training_price("gpt-4.1-2025-04-14", {}) is None
    assert training_price("gpt-4.1-2025-04-14", {"gpt-4.1-2025-04-14": 25.0}) == 25.0


def test_the_estimate_of_a_valid_file_has_epochs_tokens_and_cost(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime)

    estimate = _estimate(client, tenant_key, model=BASE, training_file=file_id)

    billed = _report(runtime, file_id).tokens["o200k_base"].total_tokens
    assert estimate["allowed_to_proceed"] is True
    assert (estimate["encoding"], estimate["training_examples"]) == ("o200k_base", len(JONNY_QA))
    assert (estimate["n_epochs"], estimate["n_epochs_auto"]) == (7, True)
    assert (estimate["billed_tokens_per_epoch"], estimate["total_billed_tokens"]) == (billed, billed * 7)
    assert estimate["estimated_cost_usd"] == pytest.approx(3.0 / 1e6 * billed * 7)
    assert any("few_examples" in warning for warning in estimate["warnings"])
    assert sdk.fine_tuning.jobs.list().data == []


def test_given_epochs_and_the_price_setting_are_used(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    runtime.settings.training_prices = {BASE: 10.0}
    file_id = upload(sdk, runtime)

    estimate = _estimate(
        client,
        tenant_key,
        model=BASE,
        training_file=file_id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )

    assert (estimate["n_epochs"], estimate["n_epochs_auto"]) == (2, False)
    assert estimate["estimated_cost_usd"] == pytest.approx(
        10.0 / 1e6 * estimate["billed_tokens_per_epoch"] * 2
    )


def test_truncated_examples_are_billed_up_to_the_context_and_warned_about(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    rows = [chat_example(q, a) for q, a in JONNY_QA]
    rows[1] = chat_example("Everything?", " word" * 17_000)
    file_id = upload(sdk, runtime, make_jsonl(rows))

    estimate = _estimate(client, tenant_key, model="gpt-3.5-turbo-0125", training_file=file_id)

    stats = _report(runtime, file_id).tokens["cl100k_base"]
    assert estimate["billed_tokens_per_epoch"] == stats.limits[0].billed_tokens < stats.total_tokens
    assert any("truncated (first lines 2)" in warning for warning in estimate["warnings"])
    assert estimate["allowed_to_proceed"] is True


def test_an_invalid_file_is_not_allowed_to_proceed_and_a_create_names_it(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    bad = upload(sdk, runtime, make_jsonl([chat_example("q", "a")] * 2))

    estimate = _estimate(client, tenant_key, model=BASE, training_file=bad)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file=bad)

    assert estimate["allowed_to_proceed"] is False
    assert estimate["errors"][0].startswith(f"training_file: File '{bad}' is invalid")
    assert (raised.value.param, raised.value.code) == ("training_file", "invalid_file")


@pytest.mark.parametrize(
    ("model", "body"),
    [("babbage-002", None), (BASE, COMPLETIONS)],
)
def test_a_format_that_does_not_fit_the_model_is_refused_naming_the_file(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str, model: str, body: bytes | None
) -> None:
    file_id = upload(sdk, runtime, body)

    estimate = _estimate(client, tenant_key, model=model, training_file=file_id)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=model, training_file=file_id)

    assert estimate["allowed_to_proceed"] is False
    assert "does not fit the model" in estimate["errors"][0]
    assert raised.value.param == "training_file"


def test_a_completion_file_is_estimated_for_a_completion_model(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime, COMPLETIONS)

    estimate = _estimate(client, tenant_key, model="davinci-002", training_file=file_id)

    assert (estimate["allowed_to_proceed"], estimate["encoding"]) == (True, "cl100k_base")
    assert estimate["estimated_cost_usd"] == pytest.approx(6.0 / 1e6 * estimate["total_billed_tokens"])


def test_a_file_still_being_validated_gives_a_partial_estimate_with_a_warning(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime, validate=False)

    estimate = _estimate(client, tenant_key, model=BASE, training_file=file_id)

    assert estimate["allowed_to_proceed"] is True
    assert estimate["estimated_cost_usd"] is None
    assert "still being validated" in estimate["warnings"][0]


def test_bad_parameters_are_the_same_400s_as_a_create(client: TestClient, tenant_key: str) -> None:
    unknown_model = client.post(
        "/v1/fine_tuning/estimates",
        json={"model": "gpt-5-super", "training_file": "file-x"},
        headers=bearer(tenant_key),
    )
    missing_file = client.post(
        "/v1/fine_tuning/estimates",
        json={"model": BASE, "training_file": "file-x"},
        headers=bearer(tenant_key),
    )

    assert (unknown_model.status_code, unknown_model.json()["error"]["param"]) == (400, "model")
    assert (missing_file.status_code, missing_file.json()["error"]["param"]) == (400, "training_file")


def test_a_waiting_job_fails_naming_its_file_when_the_validated_format_does_not_fit(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    file_id = upload(sdk, runtime, COMPLETIONS, validate=False)
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=file_id)
    access = ProviderAccess(runtime.providers, runtime.blobs, PollPolicy.every(timedelta(0)))
    submission.submit(runtime.sessions, job.id, access)

    files.validate_file(runtime.sessions, runtime.blobs, file_id)
    with session_scope(runtime.sessions) as session:
        refresh.kick_waiting_jobs(session, file_id)
    submission.submit(runtime.sessions, job.id, access)

    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.param) == ("invalid_training_file", "training_file")
    assert "completion examples" in failed.error.message


def test_validation_examples_also_in_the_training_file_are_a_warning(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    training = upload(sdk, runtime)
    held_out = [chat_example(f"Held-out question {n}?", f"Answer {n}.") for n in range(10)]
    held_out[3] = chat_example(JONNY_QA[0][0].lower(), JONNY_QA[0][1] + "  ")
    validation = upload(sdk, runtime, make_jsonl(held_out))

    estimate = _estimate(client, tenant_key, model=BASE, training_file=training, validation_file=validation)

    assert estimate["allowed_to_proceed"] is True
    assert estimate["validation_examples_in_training"] == 1
    assert any(
        w.startswith("validation_file: 1 examples are also in the training file") and "(first lines 4)" in w
        for w in estimate["warnings"]
    )


def test_validation_counts_the_current_encoding_and_its_worker_then_counts_gpt35s(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime, count_pending=False)
    validated = _report(runtime, file_id)

    counted = encodings.count_pending_encodings(runtime.sessions, runtime.blobs, file_id)
    stored = _report(runtime, file_id)
    again = encodings.count_pending_encodings(runtime.sessions, runtime.blobs, file_id)

    assert (list(validated.tokens), validated.pending_encodings) == (["o200k_base"], ["cl100k_base"])
    assert (counted, again) == (["cl100k_base"], [])
    assert (sorted(stored.tokens), stored.pending_encodings) == (["cl100k_base", "o200k_base"], [])
    assert stored.tokens["o200k_base"] == validated.tokens["o200k_base"]
    estimate = _estimate(client, tenant_key, model="gpt-3.5-turbo-0125", training_file=file_id)
    assert estimate["billed_tokens_per_epoch"] == stored.tokens["cl100k_base"].limits[0].billed_tokens > 0


def test_an_estimate_while_the_tokens_are_being_counted_says_so_and_reads_nothing(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime, count_pending=False)

    estimate = _estimate(client, tenant_key, model="gpt-3.5-turbo-0125", training_file=file_id)
    current = _estimate(client, tenant_key, model="gpt-4o-mini-2024-07-18", training_file=file_id)

    assert estimate["billed_tokens_per_epoch"] is None
    assert any("cl100k_base tokens" in w and "still being counted" in w for w in estimate["warnings"])
    assert _report(runtime, file_id).pending_encodings == ["cl100k_base"]
    assert current["billed_tokens_per_epoch"] > 0
    assert sdk.files.retrieve(file_id).status == "processed"


def test_a_gpt35_job_on_a_file_with_pending_tokens_is_priced_at_create(
    sdk: openai.OpenAI, client: TestClient, runtime: Runtime, tenant_key: str
) -> None:
    file_id = upload(sdk, runtime)

    job = sdk.fine_tuning.jobs.create(model="gpt-3.5-turbo-0125", training_file=file_id)

    with session_scope(runtime.sessions) as session:
        cost = session.get(JobRow, job.id).estimated_cost_usd  # type: ignore[union-attr]
    billed = _report(runtime, file_id).tokens["cl100k_base"].limits[0].billed_tokens
    price = training_price("gpt-3.5-turbo-0125", runtime.settings.training_prices)
    assert price is not None
    assert cost == pytest.approx(training_cost(billed, default_epochs(len(JONNY_QA)), price))


def test_a_gpt35_job_created_while_its_tokens_are_counted_is_priced_when_submitted(
    sdk: openai.OpenAI, runtime: Runtime
) -> None:
    file_id = upload(sdk, runtime, count_pending=False)
    job = sdk.fine_tuning.jobs.create(model="gpt-3.5-turbo-0125", training_file=file_id)
    with session_scope(runtime.sessions) as session:
        at_create = session.get(JobRow, job.id).estimated_cost_usd  # type: ignore[union-attr]

    access = ProviderAccess(runtime.providers, runtime.blobs, PollPolicy.every(timedelta(0)))
    submission.submit(runtime.sessions, job.id, access)

    with session_scope(runtime.sessions) as session:
        submitted = session.get(JobRow, job.id)
        assert submitted is not None
        cost, status = submitted.estimated_cost_usd, submitted.status
    billed = _report(runtime, file_id).tokens["cl100k_base"].limits[0].billed_tokens
    price = training_price("gpt-3.5-turbo-0125", runtime.settings.training_prices)
    assert price is not None
    assert at_create is None
    assert status != "failed"
    assert cost == pytest.approx(training_cost(billed, default_epochs(len(JONNY_QA)), price))
