"""`text_similarity` metrics, each computed by the library that defines it, offline:

- `fuzzy_match`: RapidFuzz's `fuzz.ratio` (normalised Indel similarity), scaled to [0, 1];
- `bleu`: sacreBLEU's `sentence_bleu` (13a tokenisation, exponential smoothing), scaled to [0, 1];
- `gleu`: NLTK's `sentence_gleu` over whitespace tokens (n-grams 1 to 4);
- `meteor`: NLTK's `single_meteor_score` over whitespace tokens. Its synonym stage needs the
  WordNet database, read from `FTM_EVALS_WORDNET_DIR` (a WordNet 3.0 `dict` directory, e.g. the
  NLTK data's `corpora/wordnet` or Debian's `wordnet-base` `/usr/share/wordnet`, see
  `service.evals.graders.wordnet`); without it, `meteor` criteria are refused when the eval is
  created;
- `rouge_1`..`rouge_5`, `rouge_l`: Google's `rouge-score` F-measure (Porter stemming off, as in
  its defaults);
- `cosine`: cosine similarity of the provider's embeddings of both texts (`service.evals.graders.
  embeddings`), computed by the caller that has the provider at hand.
"""

from __future__ import annotations

from functools import lru_cache

import sacrebleu
from nltk.translate.gleu_score import sentence_gleu
from nltk.translate.meteor_score import single_meteor_score
from rapidfuzz import fuzz
from rouge_score import rouge_scorer

from service.evals.graders.wordnet import WordNetMissing, wordnet_reader

ROUGE = {f"rouge_{n}": f"rouge{n}" for n in range(1, 6)} | {"rouge_l": "rougeL"}
METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", *ROUGE, "cosine")
EMBEDDING_METRICS = frozenset({"cosine"})


class MetricUnavailable(RuntimeError):
    """A metric that needs data this installation lacks (meteor without WordNet)."""


@lru_cache(maxsize=8)
def _rouge(metric: str) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer([ROUGE[metric]])


def similarity(metric: str, hypothesis: str, reference: str, *, wordnet_dir: str | None = None) -> float:
    """The score in [0, 1] of `hypothesis` (the sample) against `reference` by `metric`."""
    if metric == "fuzzy_match":
        return float(fuzz.ratio(hypothesis, reference)) / 100
    if metric == "bleu":
        return float(sacrebleu.sentence_bleu(hypothesis, [reference]).score) / 100
    if metric == "gleu":
        return float(sentence_gleu([reference.split()], hypothesis.split()))
    if metric == "meteor":
        if not wordnet_dir:
            raise MetricUnavailable("meteor needs the WordNet database; set FTM_EVALS_WORDNET_DIR.")
        try:
            reader = wordnet_reader(wordnet_dir)
        except WordNetMissing as missing:
            raise MetricUnavailable(str(missing)) from None
        return float(single_meteor_score(reference.split(), hypothesis.split(), wordnet=reader))
    if metric in ROUGE:
        return float(_rouge(metric).score(reference, hypothesis)[ROUGE[metric]].fmeasure)
    raise ValueError(f"'{metric}' is not computed from the texts alone")
