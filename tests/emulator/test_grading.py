"""The local provider's fixed rule for grader prompts."""

from __future__ import annotations

import json

import pytest

from emulator.inference.grading import LABEL, SCORE, agreement, grade, grader_kind


def fmt(name: str, schema: dict[str, object]) -> dict[str, object]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reference: Paris is the capital\nAnswer: Paris is the capital", 1.0),
        ("Reference: Paris is the capital\nAnswer: Rome", 0.0),
        ("Reference: a b c d\nAnswer: a b", 2 * (1.0 * 0.5) / 1.5),
        ("no labelled lines at all", 0.0),
    ],
)
def test_agreement_is_the_word_f1_of_the_reference_and_answer_lines(text: str, expected: float) -> None:
    assert agreement([text]) == pytest.approx(expected)


def test_labels_and_scores_follow_the_agreement() -> None:
    labels = fmt(LABEL, {"properties": {"label": {"enum": ["correct", "incorrect"]}}})
    scores = fmt(SCORE, {"properties": {"score": {"minimum": 0, "maximum": 10}}})
    agree, disagree = ["Reference: blue sky\nAnswer: blue sky"], ["Reference: blue sky\nAnswer: red sea"]

    assert json.loads(grade(LABEL, labels, agree)) == {"label": "correct"}
    assert json.loads(grade(LABEL, labels, disagree)) == {"label": "incorrect"}
    assert json.loads(grade(SCORE, scores, agree)) == {"score": 10.0}
    assert json.loads(grade(SCORE, scores, disagree)) == {"score": 0.0}


def test_only_ftm_grader_schemas_are_grader_requests() -> None:
    assert grader_kind(fmt(LABEL, {})) == LABEL
    assert grader_kind(fmt("something_else", {})) is None
    assert grader_kind({"type": "json_object"}) is None
    assert grader_kind(None) is None
