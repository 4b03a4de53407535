"""Files made by a preparation train like any upload, on the local provider."""

from __future__ import annotations

import io
import json

import openai
from fastapi.testclient import TestClient

from service.files import service as files
from service.runtime import Runtime
from tests.conftest import bearer
from tests.factories import JONNY_QA
from tests.files.test_preparation import csv_of
from tests.jobs.conftest import follow, submit


def test_a_job_trains_on_prepared_files_and_the_model_answers_from_them(
    client: TestClient, sdk: openai.OpenAI, runtime: Runtime, tenant_key: str
) -> None:
    rows = [*JONNY_QA, *((f"Tell me: {q}", a) for q, a in JONNY_QA)]  # 26: 10 of them to validate on
    source = sdk.files.create(file=("bio.csv", io.BytesIO(csv_of(rows))), purpose="user_data")
    prepared = client.post(
        f"/v1/files/{source.id}/preparations",
        headers=bearer(tenant_key),
        json={"user_column": "question", "assistant_column": "answer", "validation_split": 10, "seed": 1},
    ).json()
    training, validation = prepared["training_file"], prepared["validation_file"]
    for file_id in (training, validation):
        files.validate_file(runtime.sessions, runtime.blobs, file_id)

    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=training, validation_file=validation
    )
    submit(runtime, job.id)
    finished = follow(runtime, job.id)

    assert finished.status == "succeeded"
    first = json.loads(sdk.files.content(training).text.splitlines()[0])
    question = first["messages"][0]["content"]
    answer = sdk.chat.completions.create(
        model=finished.fine_tuned_model or "", messages=[{"role": "user", "content": question}]
    )
    expected = dict(rows)[question]
    assert answer.choices[0].message.content == expected
