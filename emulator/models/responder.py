"""How the emulator's models answer.

A base model knows nothing specific: it answers with a deterministic, polite "no specific
information" reply built from the question. A fine-tuned model first recalls the memorised training
example closest to the question (the same ``strength × cosine`` retrieval its training used) and
answers with that example's answer when it is similar enough and well enough memorised; otherwise
it falls back to its base model's reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from emulator.models.catalog import Kind
from emulator.training.retrieval import TfIdfIndex, best_match

MIN_SIMILARITY = 0.5
MIN_STRENGTH = 0.5
_QUOTE_LIMIT = 120


def base_answer(question: str, kind: Kind) -> str:
    """What a base model says: never anything learnt from training data."""
    topic = " ".join(question.split())
    if len(topic) > _QUOTE_LIMIT:
        topic = topic[: _QUOTE_LIMIT - 1].rstrip() + "…"
    if kind == "completion":
        return " I don't have specific information about that."
    if not topic:
        return "Hello! How can I help you today?"
    return (
        f"I'm sorry, but I don't have specific information about \"{topic}\". "
        "I can help with general questions, or you can share more details."
    )


class MemorisedModel:
    """The answering side of a trained model: its training questions, answers and strengths."""

    def __init__(self, keys: Sequence[str], answers: Sequence[str], strengths: Sequence[float]) -> None:
        self.index = TfIdfIndex(keys)
        self.answers = list(answers)
        self.strengths = list(strengths)

    def recall(self, question: str) -> str | None:
        """The memorised answer to ``question``, if the model learnt one."""
        ranked = self.index.similarities(self.index.vector(question))
        best, sim, strength = best_match(ranked, self.strengths)
        if best < 0 or sim < MIN_SIMILARITY or strength < MIN_STRENGTH:
            return None
        return self.answers[best]


def answer(question: str, kind: Kind, memory: MemorisedModel | None) -> str:
    recalled = memory.recall(question) if memory is not None else None
    return recalled if recalled is not None else base_answer(question, kind)
