"""The small model fine-tuning trains: metrics computed from it, deterministic given the seed."""

from __future__ import annotations

import pytest

from emulator.models.responder import MemorisedModel
from emulator.tokens import Tokenizers
from emulator.training.dataset import DatasetError, Example, parse_examples
from emulator.training.trainer import (
    Hyperparameters,
    TrainingRun,
    auto_epochs,
    resolve_hyperparameters,
    train,
)
from tests.emulator.samples import VALIDATION_FACTS, chat_jsonl


@pytest.fixture(scope="module")
def tokenizers() -> Tokenizers:
    return Tokenizers()


def _examples(tokenizers: Tokenizers, data: bytes) -> list[Example]:
    return parse_examples(data, fmt="chat", encode=lambda text: tokenizers.encode("o200k_base", text))


def _run(tokenizers: Tokenizers, hyper: Hyperparameters, seed: int = 1) -> TrainingRun:
    return train(
        _examples(tokenizers, chat_jsonl()),
        _examples(tokenizers, chat_jsonl(VALIDATION_FACTS)),
        hyper,
        seed=seed,
        vocab_size=tokenizers.get("o200k_base").n_vocab,
        training_context=65_536,
    )


@pytest.mark.parametrize(("n", "epochs"), [(10, 10), (13, 7), (50, 3), (1000, 3), (10_000, 2), (30_000, 1)])
def test_auto_epochs_follow_the_cookbook_heuristic(n: int, epochs: int) -> None:
    assert auto_epochs(n) == epochs


def test_auto_hyperparameters_resolve_to_numbers() -> None:
    resolved = resolve_hyperparameters({"n_epochs": "auto", "batch_size": "auto"}, 13)
    assert resolved == Hyperparameters(n_epochs=7, batch_size=1, learning_rate_multiplier=1.8)


def test_training_loss_falls_and_validation_is_computed_on_unseen_examples(tokenizers: Tokenizers) -> None:
    # Given / When the model trains three epochs with a validation set
    run = _run(tokenizers, Hyperparameters(n_epochs=3, batch_size=1, learning_rate_multiplier=1.0))

    # Then the loss of the last epoch is far below the first epoch's
    first_epoch = [m.train_loss for m in run.steps[:13]]
    last_epoch = [m.train_loss for m in run.steps[-13:]]
    assert sum(last_epoch) / 13 < sum(first_epoch) / 13 / 5
    # And validation, on examples never memorised, stays above the training loss
    assert run.steps[-1].full_valid_loss is not None
    assert run.steps[-1].full_valid_loss > run.steps[-1].train_loss
    # And full validation figures exist only at epoch ends
    assert [m.step for m in run.steps if m.full_valid_loss is not None] == [13, 26, 39]


def test_training_is_deterministic_given_the_seed(tokenizers: Tokenizers) -> None:
    hyper = Hyperparameters(n_epochs=2, batch_size=2, learning_rate_multiplier=1.0)
    assert _run(tokenizers, hyper, seed=5) == _run(tokenizers, hyper, seed=5)
    assert _run(tokenizers, hyper, seed=5).steps != _run(tokenizers, hyper, seed=6).steps


def test_checkpoints_snapshot_the_last_three_epochs(tokenizers: Tokenizers) -> None:
    run = _run(tokenizers, Hyperparameters(n_epochs=4, batch_size=5, learning_rate_multiplier=1.0))
    assert run.steps_per_epoch == 3
    assert sorted(run.snapshots) == [6, 9, 12]


def test_a_barely_trained_model_does_not_recall_its_data(tokenizers: Tokenizers) -> None:
    # Given a model that saw each example once at a low learning rate
    run = _run(tokenizers, Hyperparameters(n_epochs=1, batch_size=1, learning_rate_multiplier=0.2))
    memory = MemorisedModel(run.keys, run.answers, run.snapshots[run.total_steps])

    # When asked a trained question, then it has not memorised the answer
    assert memory.recall("When was Jonny Whizbang born?") is None


def test_a_bad_line_is_named_in_the_dataset_error(tokenizers: Tokenizers) -> None:
    data = chat_jsonl() + b'{"messages": [{"role": "user", "content": "hi"}]}\n'
    with pytest.raises(DatasetError, match="line 14: no assistant message"):
        _examples(tokenizers, data)
