"""Every grader's figures on a fixed table, against the reference libraries called directly (and,
for string_check and the formula, against hand-checked expectations)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.translate.meteor_score import single_meteor_score
from rapidfuzz import fuzz
from rouge_score import rouge_scorer

from service.evals.graders.checks import string_check
from service.evals.graders.formula import FormulaError, evaluate, parse_formula
from service.evals.graders.grade import GradingSettings, grade
from service.evals.graders.similarity import ROUGE, MetricUnavailable, similarity
from service.evals.graders.wordnet import wordnet_reader
from service.evals.sampling import ModelCaller
from service.providers.inference import Usage

TABLE = [
    ("Jonny Whizbang was born on February 22, 1957.", "Jonny Whizbang was born on February 22, 1957."),
    ("He was born in February 1957.", "Jonny Whizbang was born on February 22, 1957."),
    ("The cat sat on the mat", "The cat is sitting on the mat"),
    ("I don't know.", "Paris is the capital of France."),
    ("the quick brown fox jumps over the lazy dog", "a quick brown dog jumps over the lazy fox"),
]
WORDNET = os.environ.get("FTM_EVALS_WORDNET_DIR") or "/usr/share/wordnet"


def reference(metric: str, hypothesis: str, ref: str) -> float:
    """The figure as each reference library computes it, called the way its own docs show."""
    if metric == "fuzzy_match":
        return fuzz.ratio(hypothesis, ref) / 100
    if metric == "bleu":
        return sacrebleu.sentence_bleu(hypothesis, [ref]).score / 100
    if metric == "gleu":
        return float(sentence_gleu([ref.split()], hypothesis.split()))
    name = ROUGE[metric]
    return float(rouge_scorer.RougeScorer([name]).score(ref, hypothesis)[name].fmeasure)


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", *ROUGE])
@pytest.mark.parametrize(("hypothesis", "ref"), TABLE)
def test_text_similarity_equals_the_reference_library(metric: str, hypothesis: str, ref: str) -> None:
    assert similarity(metric, hypothesis, ref) == pytest.approx(reference(metric, hypothesis, ref), abs=1e-12)


def test_identical_texts_score_one_and_unrelated_texts_score_low() -> None:
    same, unrelated = TABLE[0], TABLE[3]
    assert all(similarity(m, *same) == pytest.approx(1.0) for m in ["fuzzy_match", "bleu", "gleu", *ROUGE])
    assert similarity("rouge_1", *unrelated) == 0.0


@pytest.mark.skipif(not (Path(WORDNET) / "index.noun").is_file(), reason="no WordNet database installed")
@pytest.mark.parametrize(("hypothesis", "ref"), TABLE)
def test_meteor_equals_nltk_with_the_same_wordnet(hypothesis: str, ref: str) -> None:
    expected = single_meteor_score(ref.split(), hypothesis.split(), wordnet=wordnet_reader(WORDNET))
    assert similarity("meteor", hypothesis, ref, wordnet_dir=WORDNET) == pytest.approx(expected)


def test_meteor_without_wordnet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MetricUnavailable, match="WordNet"):
        similarity("meteor", "a", "a", wordnet_dir=None)
    with pytest.raises(MetricUnavailable, match="index.noun"):
        similarity("meteor", "a", "a", wordnet_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("operation", "text", "ref", "score"),
    [
        ("eq", "Paris", "Paris", 1.0),
        ("eq", "paris", "Paris", 0.0),
        ("ne", "paris", "Paris", 1.0),
        ("ne", "Paris", "Paris", 0.0),
        ("like", "The capital is Paris.", "Paris", 1.0),
        ("like", "The capital is paris.", "Paris", 0.0),
        ("ilike", "The capital is PARIS.", "paris", 1.0),
        ("ilike", "The capital is Rome.", "paris", 0.0),
    ],
)
def test_string_check_operations(operation: str, text: str, ref: str, score: float) -> None:
    assert string_check(operation, text, ref) == score


def test_formula_combines_named_scores() -> None:
    tree = parse_formula("0.5 * exact + max(fuzzy, 0.2) - abs(-0.1) ** 2", names={"exact", "fuzzy"})
    assert evaluate(tree, {"exact": 1.0, "fuzzy": 0.1}) == pytest.approx(0.5 + 0.2 - 0.01)


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('true')",
        "exact.__class__",
        "[exact][0]",
        "exact if fuzzy else 0",
        "open('x')",
        "unknown + 1",
        "'text'",
        "exact ** 1000",
    ],
)
def test_formula_refuses_anything_but_arithmetic_over_grader_names(formula: str) -> None:
    with pytest.raises(FormulaError):
        evaluate(parse_formula(formula, names={"exact", "fuzzy"}), {"exact": 2.0, "fuzzy": 1.0})


class Embeddings(ModelCaller):
    """A caller whose provider embeds by a fixed table (the cosine arithmetic is what is tested)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], Usage]:
        return [self.vectors[text] for text in texts], Usage(prompt_tokens=4, total_tokens=4)


@pytest.mark.parametrize(
    ("left", "right"),
    [([1.0, 0.0, 2.0], [1.0, 0.0, 2.0]), ([1.0, 2.0, 3.0], [-2.0, 0.5, 4.0]), ([0.0, 1.0], [1.0, 0.0])],
)
def test_cosine_is_numpys_cosine_of_the_providers_embeddings(left: list[float], right: list[float]) -> None:
    criterion = {
        "type": "text_similarity",
        "name": "cos",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "evaluation_metric": "cosine",
        "pass_threshold": 0.5,
    }
    context = {"item": {"answer": "b"}, "sample": {"output_text": "a"}}
    caller = Embeddings({"a": left, "b": right})

    result = grade(criterion, context, caller=caller, settings=GradingSettings("emb", None))

    expected = float(np.dot(left, right) / (np.linalg.norm(left) * np.linalg.norm(right)))
    assert result["score"] == pytest.approx(expected)
    assert result["passed"] is (expected >= 0.5)
    assert result["usage"][0]["model_name"] == "emb"
