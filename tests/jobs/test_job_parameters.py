"""Job parameters are typed as strictly as OpenAI types them: a number is a JSON number, never a
string or a boolean read as one."""

from __future__ import annotations

import openai
import pytest

from service.runtime import Runtime
from tests.jobs.conftest import upload

BASE = "gpt-4o-mini-2024-07-18"
WRONG_TYPES = [
    ("n_epochs", True),
    ("n_epochs", "3"),
    ("n_epochs", 3.0),
    ("batch_size", True),
    ("batch_size", "8"),
    ("learning_rate_multiplier", "2"),
    ("learning_rate_multiplier", True),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_a_hyperparameter_of_the_wrong_json_type_is_a_400_naming_it_and_creates_nothing(
    sdk: openai.OpenAI, name: str, value: object
) -> None:
    # Given a hyperparameter written as a string or a boolean instead of a number
    hyperparameters = {name: value}

    # When a job is created with it
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file="file-x", hyperparameters=hyperparameters)  # type: ignore[arg-type]

    # Then it is refused naming the field, and no job exists
    assert raised.value.param == f"hyperparameters.{name}"
    assert sdk.fine_tuning.jobs.list().data == []


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_a_method_hyperparameter_of_the_wrong_json_type_is_a_400_naming_it(
    sdk: openai.OpenAI, name: str, value: object
) -> None:
    # Given the same mistake in the `method` form
    method = {"type": "supervised", "supervised": {"hyperparameters": {name: value}}}

    # When a job is created with it
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file="file-x", method=method)  # type: ignore[arg-type]

    # Then the full path of the field is named
    assert raised.value.param == f"method.supervised.hyperparameters.{name}"


@pytest.mark.parametrize("seed", [True, "42"])
def test_a_seed_that_is_not_a_json_integer_is_a_400_naming_seed(sdk: openai.OpenAI, seed: object) -> None:
    # Given a seed that is not an integer
    # When a job is created with it
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file="file-x", seed=seed)  # type: ignore[arg-type]

    # Then seed is named
    assert raised.value.param == "seed"


def test_a_json_integer_is_a_valid_learning_rate_multiplier(sdk: openai.OpenAI, runtime: Runtime) -> None:
    # Given a training file
    file_id = upload(sdk, runtime)

    # When a job is created with an integral learning rate multiplier and typed hyperparameters
    job = sdk.fine_tuning.jobs.create(
        model=BASE,
        training_file=file_id,
        hyperparameters={"learning_rate_multiplier": 2, "n_epochs": 3, "batch_size": "auto"},
    )

    # Then they are taken as given
    assert job.hyperparameters.learning_rate_multiplier == 2
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (3, "auto")


@pytest.mark.parametrize(
    "suffix", ["a:b/../c", "a/b", "a:b", "a b", "a%2Fb", "a?b", "a#b", "é", "x" * 65, ""]
)
def test_a_suffix_a_model_name_cannot_carry_is_a_400_naming_suffix_and_creates_nothing(
    sdk: openai.OpenAI, suffix: str
) -> None:
    # Given a suffix with a character that would split the model's name or its URL
    # When a job is created with it
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.fine_tuning.jobs.create(model=BASE, training_file="file-x", suffix=suffix)

    # Then suffix is named, and no job exists
    assert raised.value.param == "suffix"
    assert sdk.fine_tuning.jobs.list().data == []


def test_a_suffix_of_every_allowed_character_is_kept(sdk: openai.OpenAI, runtime: Runtime) -> None:
    # Given a suffix of letters, digits, '.', '_' and '-'
    suffix = "Support_v1.2-" + "x" * 51

    # When a job is created with it
    job = sdk.fine_tuning.jobs.create(model=BASE, training_file=upload(sdk, runtime), suffix=suffix)

    # Then the job keeps it
    assert job.to_dict()["user_provided_suffix"] == suffix
