"""TF-IDF retrieval over the questions a model was trained on.

Text is normalised to lower-case word terms (possessive ``'s`` and plural ``s`` stripped), weighted
by smoothed inverse document frequency and compared by cosine similarity. Words never seen in
training get the highest weight, so a question about something else scores low.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"[a-z0-9]+")
_POSSESSIVE = re.compile(r"['\u2019]s\b")


def terms(text: str) -> list[str]:
    """Normalised word terms of ``text``: "Jonny Whizbang's dates" -> [jonny, whizbang, date]."""
    words = _WORD.findall(_POSSESSIVE.sub("", text.lower()))
    out: list[str] = []
    for word in words:
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


Vector = dict[str, float]


class TfIdfIndex:
    """An index over a fixed list of documents (the training examples' questions)."""

    def __init__(self, documents: Sequence[str]) -> None:
        counts = [Counter(terms(doc)) for doc in documents]
        df: Counter[str] = Counter()
        for count in counts:
            df.update(count.keys())
        n = len(documents)
        self._idf = {term: math.log((1 + n) / (1 + freq)) + 1.0 for term, freq in df.items()}
        self._unknown_idf = math.log(1 + n) + 1.0
        self.vectors = [self._weigh(count) for count in counts]
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, vector in enumerate(self.vectors):
            for term, weight in vector.items():
                self._postings.setdefault(term, []).append((i, weight))

    def __len__(self) -> int:
        return len(self.vectors)

    def _weigh(self, count: Counter[str]) -> Vector:
        vector = {
            term: (1 + math.log(tf)) * self._idf.get(term, self._unknown_idf) for term, tf in count.items()
        }
        norm = math.sqrt(sum(w * w for w in vector.values()))
        return {term: w / norm for term, w in vector.items()} if norm else {}

    def vector(self, text: str) -> Vector:
        return self._weigh(Counter(terms(text)))

    def similarities(self, query: Vector) -> list[tuple[float, int]]:
        """(cosine, document index) of every document sharing a term with ``query``, best first."""
        scores: dict[int, float] = {}
        for term, weight in query.items():
            for doc, doc_weight in self._postings.get(term, ()):
                scores[doc] = scores.get(doc, 0.0) + weight * doc_weight
        return sorted(((score, doc) for doc, score in scores.items()), key=lambda p: (-p[0], p[1]))


def best_match(ranked: Sequence[tuple[float, int]], strengths: Sequence[float]) -> tuple[int, float, float]:
    """The memorised document that best explains a query: (index, similarity, strength).

    Scores are ``strength × similarity``; index -1 when nothing memorised shares a term.
    """
    best, best_sim, best_strength, best_score = -1, 0.0, 0.0, 0.0
    for sim, doc in ranked:
        if sim <= best_score:
            break  # strength ≤ 1, so no later (less similar) document can score higher
        strength = strengths[doc]
        if strength * sim > best_score:
            best, best_sim, best_strength, best_score = doc, sim, strength, strength * sim
    return best, best_sim, best_strength
