"""A job whose files live in the S3 blob store: the training file goes to the provider from a
stream read out of the bucket, and the result file comes back into it."""

from __future__ import annotations

import openai
import pytest

from service.config import Settings
from service.jobs.submission import SubmitOutcome
from service.runtime import Runtime
from tests.factories import jonny_dataset
from tests.jobs.conftest import follow, submit, upload
from tests.jobs.test_reconciliation import BASE
from tests.s3 import use_s3


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str) -> Settings:
    return use_s3(settings, s3_endpoint)


def test_a_job_on_the_s3_store_uploads_its_file_from_the_bucket_and_keeps_its_results_there(
    sdk: openai.OpenAI, runtime: Runtime, emulator_url: str
) -> None:
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix="s3")

    outcome = submit(runtime, job.id)
    done = follow(runtime, job.id)

    with openai.OpenAI(base_url=emulator_url, api_key="sk-local", max_retries=0) as provider:
        copies = [
            f for f in provider.files.list(purpose="fine-tune") if f.filename.startswith(job.training_file)
        ]
        assert len(copies) == 1
        assert provider.files.content(copies[0].id).content == jonny_dataset()
    assert (outcome, done.status) == (SubmitOutcome.SUBMITTED, "succeeded")
    (results,) = done.result_files
    assert runtime.blobs.exists(results)
    assert sdk.files.content(results).content.startswith(b"step,")
