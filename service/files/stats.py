"""Distributions and per-encoding token tallies, kept as compact arrays (4 bytes per example)."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate

from service.files.report import ContextLimit, Distribution, TokenStats
from service.files.tokens import ExampleCounter, ExampleText, get_encoding
from service.models.catalog import BASE_MODELS

FIRST_LINES = 10


def quantile(ordered: Sequence[int], q: float) -> float:
    """The q-quantile of sorted values, interpolated linearly (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: Sequence[int]) -> Distribution | None:
    """Min, max, mean, median, p5 and p95 of `values`, exactly as over the sorted values, but from
    the counts of the distinct values: a file of millions of examples has a few thousand distinct
    token counts, so no sorted copy of them all is made."""
    if not values:
        return None
    counts = sorted(Counter(values).items())
    cumulative = list(accumulate(count for _, count in counts))
    distinct = [value for value, _ in counts]

    def at(index: int) -> int:
        return distinct[bisect_right(cumulative, index)]

    def quantile_of(q: float) -> float:
        position = (len(values) - 1) * q
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return at(low) + (at(high) - at(low)) * (position - low)

    return Distribution(
        min=distinct[0],
        max=distinct[-1],
        mean=round(sum(value * count for value, count in counts) / len(values), 3),
        median=quantile_of(0.5),
        p5=quantile_of(0.05),
        p95=quantile_of(0.95),
    )


def models_for(kind: str) -> dict[str, list[str]]:
    """The base models of a kind (`chat` or `completion`), grouped by encoding."""
    grouped: dict[str, list[str]] = {}
    for model in BASE_MODELS.values():
        if model.kind == kind:
            grouped.setdefault(model.encoding, []).append(model.id)
    return grouped


class _Limit:
    def __init__(self, limit: int, models: list[str]) -> None:
        self.limit = limit
        self.models = models
        self.over = 0
        self.first_lines: list[int] = []
        self.billed = 0

    def add(self, line: int, total: int) -> None:
        self.billed += min(total, self.limit)
        if total > self.limit:
            self.over += 1
            if len(self.first_lines) < FIRST_LINES:
                self.first_lines.append(line)


class EncodingTally:
    """Token counts of every valid example with one encoding, and the examples over each limit."""

    def __init__(self, encoding: str, models: list[str]) -> None:
        self.encoding = encoding
        self.models = models
        self.counter = ExampleCounter(get_encoding(encoding))
        self.totals = array("I")
        self.trained = array("I")
        by_limit: dict[int, list[str]] = {}
        for model in models:
            by_limit.setdefault(BASE_MODELS[model].training_context, []).append(model)
        self.limits = [_Limit(limit, names) for limit, names in sorted(by_limit.items())]

    def add(self, line: int, text: ExampleText) -> int:
        counted = self.counter.tally(text)
        self.totals.append(counted.total)
        self.trained.append(counted.trained)
        for limit in self.limits:
            limit.add(line, counted.total)
        return counted.total

    def stats(self) -> TokenStats:
        return TokenStats(
            encoding=self.encoding,
            models=self.models,
            total_tokens=sum(self.totals),
            trained_tokens=sum(self.trained),
            example_tokens=distribution(self.totals),
            assistant_tokens=distribution(self.trained),
            limits=[
                ContextLimit(
                    limit=limit.limit,
                    models=limit.models,
                    examples_over=limit.over,
                    first_lines=limit.first_lines,
                    billed_tokens=limit.billed,
                )
                for limit in self.limits
            ],
        )
