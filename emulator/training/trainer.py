"""The small model that fine-tuning really trains, and the metrics computed from it.

The model memorises training examples. Each example ``i`` has a memorisation strength ``s_i``
(0 = never seen); every time a training step includes it, ``s_i ← 1 − (1 − s_i)(1 − η)`` with
``η = 1 − exp(−0.5 × learning_rate_multiplier)``. To predict the answer to a question, the model
retrieves the memorised example maximising ``s_i × cosine(question, question_i)`` (TF-IDF) and
mixes three distributions per answer position ``t``:

    p(tok) = λ·[tok = answer_i[t]] + (1 − λ)·(0.3·context(tok) + 0.7·unigram(tok))

with ``λ = 0.97 × s_i × cosine``, ``context`` the empirical distribution of the example's prompt
tokens (copying from the prompt) and ``unigram`` an add-α smoothed unigram over the answer tokens
learnt so far (the whole vocabulary as prior). Training loss is the mean per-token cross-entropy of
the current batch's answer tokens *before* the batch updates the model; token accuracy is the
share of positions whose argmax prediction is the right token. Validation figures are computed the
same way on examples the model never memorises. Everything is deterministic given the seed.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from emulator.training.dataset import Example
from emulator.training.retrieval import TfIdfIndex, best_match

LEARNING_RATE_SCALE = 0.5
AUTO_LEARNING_RATE_MULTIPLIER = 1.8
COPY_CAP = 0.97
CONTEXT_WEIGHT = 0.3
UNIGRAM_ALPHA = 0.05
CHECKPOINT_EPOCHS = 3


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float


def auto_epochs(n_examples: int) -> int:
    """The cookbook's default-epochs heuristic."""
    if n_examples * 3 < 100:
        return min(25, 100 // n_examples)
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


def resolve_hyperparameters(requested: Mapping[str, object], n_examples: int) -> Hyperparameters:
    """Numbers for every ``"auto"`` (or missing) hyperparameter."""
    epochs, batch, lrm = (requested.get(k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier"))
    return Hyperparameters(
        n_epochs=epochs if isinstance(epochs, int) else auto_epochs(n_examples),
        batch_size=min(batch, n_examples) if isinstance(batch, int) else 1,
        learning_rate_multiplier=float(lrm)
        if isinstance(lrm, int | float)
        else AUTO_LEARNING_RATE_MULTIPLIER,
    )


class StepMetrics(BaseModel):
    """Figures of one training step (validation ones only with a validation file)."""

    step: int
    train_loss: float
    train_mean_token_accuracy: float
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class TrainingRun(BaseModel):
    """A whole training run, computed when the job is validated and revealed step by step."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    steps_per_epoch: int
    total_steps: int
    trained_tokens: int
    keys: list[str]
    answers: list[str]
    steps: list[StepMetrics]
    snapshots: dict[int, list[float]]


class Learner:
    """The model being trained: memorisation strengths plus a learnt unigram distribution."""

    def __init__(self, examples: Sequence[Example], vocab_size: int, learning_rate_multiplier: float) -> None:
        self.examples = examples
        self.strengths = [0.0] * len(examples)
        self.eta = 1.0 - math.exp(-LEARNING_RATE_SCALE * learning_rate_multiplier)
        self.vocab_size = vocab_size
        self.counts: dict[int, float] = {}
        self.total = 0.0
        self.top_token = -1

    def learn(self, i: int) -> None:
        """One gradient step's worth of learning on training example ``i``."""
        self.strengths[i] = 1.0 - (1.0 - self.strengths[i]) * (1.0 - self.eta)
        for token in self.examples[i].answer_tokens:
            self.counts[token] = self.counts.get(token, 0.0) + self.eta
            self.total += self.eta
            if self.top_token < 0 or self.counts[token] > self.counts[self.top_token]:
                self.top_token = token

    def _base(self, token: int, context: Counter[int], n_context: int) -> float:
        unigram = (self.counts.get(token, 0.0) + UNIGRAM_ALPHA) / (
            self.total + UNIGRAM_ALPHA * self.vocab_size
        )
        if not n_context:
            return unigram
        return CONTEXT_WEIGHT * context.get(token, 0) / n_context + (1.0 - CONTEXT_WEIGHT) * unigram

    def score(self, example: Example, ranked: Sequence[tuple[float, int]]) -> tuple[float, int, int]:
        """(summed cross-entropy, answer tokens, correctly predicted tokens) of one example."""
        best, sim, strength = best_match(ranked, self.strengths)
        copy = self.examples[best].answer_tokens if best >= 0 else ()
        lam = COPY_CAP * strength * sim
        context = Counter(example.context)
        n_context = len(example.context)
        candidates = set(context) | ({self.top_token} if self.top_token >= 0 else set())
        base_top = min(candidates, key=lambda tok: (-self._base(tok, context, n_context), tok), default=-1)
        base_top_p = self._base(base_top, context, n_context) if base_top >= 0 else 0.0
        nll, correct = 0.0, 0
        for t, target in enumerate(example.answer_tokens):
            copied = copy[t] if t < len(copy) else -1
            weight = lam if copied >= 0 else 0.0
            p = (1.0 - weight) * self._base(target, context, n_context) + (
                weight if target == copied else 0.0
            )
            nll -= math.log(p)
            if (
                copied >= 0
                and weight + (1.0 - weight) * self._base(copied, context, n_context)
                >= (1.0 - weight) * base_top_p
            ):
                predicted = copied
            else:
                predicted = base_top
            correct += predicted == target
        return nll, len(example.answer_tokens), correct


def _mean(scores: Sequence[tuple[float, int, int]]) -> tuple[float, float]:
    tokens = sum(s[1] for s in scores) or 1
    return round(sum(s[0] for s in scores) / tokens, 6), round(sum(s[2] for s in scores) / tokens, 6)


def train(
    examples: Sequence[Example],
    validation: Sequence[Example],
    hyper: Hyperparameters,
    *,
    seed: int,
    vocab_size: int,
    training_context: int,
) -> TrainingRun:
    """Train a fresh model on ``examples`` and record every step's metrics and the checkpoints."""
    index = TfIdfIndex([ex.key for ex in examples])
    ranked_train = [index.similarities(vector) for vector in index.vectors]
    ranked_valid = [index.similarities(index.vector(ex.key)) for ex in validation]
    learner = Learner(examples, vocab_size, hyper.learning_rate_multiplier)
    n, size = len(examples), hyper.batch_size
    steps_per_epoch = math.ceil(n / size)
    total_steps = steps_per_epoch * hyper.n_epochs
    snapshot_steps = {
        e * steps_per_epoch for e in range(max(1, hyper.n_epochs - CHECKPOINT_EPOCHS + 1), hyper.n_epochs + 1)
    }
    steps: list[StepMetrics] = []
    snapshots: dict[int, list[float]] = {}
    for epoch in range(1, hyper.n_epochs + 1):
        order = list(range(n))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        for b in range(steps_per_epoch):
            step = (epoch - 1) * steps_per_epoch + b + 1
            batch = order[b * size : (b + 1) * size]
            train_loss, train_acc = _mean([learner.score(examples[i], ranked_train[i]) for i in batch])
            for i in batch:
                learner.learn(i)
            metrics = StepMetrics(step=step, train_loss=train_loss, train_mean_token_accuracy=train_acc)
            if validation:
                picked = [
                    ((step - 1) * size + j) % len(validation) for j in range(min(size, len(validation)))
                ]
                scores = [learner.score(validation[j], ranked_valid[j]) for j in picked]
                metrics.valid_loss, metrics.valid_mean_token_accuracy = _mean(scores)
                if b == steps_per_epoch - 1:
                    full = [
                        learner.score(ex, ranked) for ex, ranked in zip(validation, ranked_valid, strict=True)
                    ]
                    metrics.full_valid_loss, metrics.full_valid_mean_token_accuracy = _mean(full)
            steps.append(metrics)
            if step in snapshot_steps:
                snapshots[step] = [round(s, 6) for s in learner.strengths]
    billed = sum(min(ex.billed_tokens, training_context) for ex in examples)
    return TrainingRun(
        n_epochs=hyper.n_epochs,
        batch_size=size,
        learning_rate_multiplier=hyper.learning_rate_multiplier,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        trained_tokens=billed * hyper.n_epochs,
        keys=[ex.key for ex in examples],
        answers=[ex.answer for ex in examples],
        steps=steps,
        snapshots=snapshots,
    )
