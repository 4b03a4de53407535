"""Distributions and per-encoding token tallies, kept as counts of distinct values (a file of
millions of examples has a few thousand distinct token counts), so their memory does not grow
with the file."""

from __future__ import annotations

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


def distribution(values: Sequence[int] | Counter[int]) -> Distribution | None:
    """Min, max, mean, median, p5 and p95 of `values` (or of the values counted in a Counter),
    exactly as over the sorted values, but from the counts of the distinct values, so no sorted
    copy of them all is made."""
    counted = values if isinstance(values, Counter) else Counter(values)
    size = counted.total()
    if not size:
        return None
    counts = sorted(counted.items())
    cumulative = list(accumulate(count for _, count in counts))
    distinct = [value for value, _ in counts]

    def at(index: int) -> int:
        return distinct[bisect_right(cumulative, index)]

    def quantile_of(q: float) -> float:
        position = (size - 1) * q
        low = int(position)
        high = min(low + 1, size - 1)
        return at(low) + (at(high) - at(low)) * (position - low)

    return Distribution(
        min=distinct[0],
        max=distinct[-1],
        mean=round(sum(value * count for value, count in counts) / size, 3),
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
        self._counter: ExampleCounter | None = None  # loaded when first counting in this process
        self.totals: Counter[int] = Counter()
        self.trained: Counter[int] = Counter()
        by_limit: dict[int, list[str]] = {}
        for model in models:
            by_limit.setdefault(BASE_MODELS[model].training_context, []).append(model)
        self.limits = [_Limit(limit, names) for limit, names in sorted(by_limit.items())]

    @property
    def counter(self) -> ExampleCounter:
        if self._counter is None:
            self._counter = ExampleCounter(get_encoding(self.encoding))
        return self._counter

    def add(self, line: int, text: ExampleText) -> int:
        total, trained = self.counter.tokens(text)
        return self.add_counted(line, total, trained)

    def add_block(self, block: list[tuple[int, ExampleText]]) -> None:
        """Count a block of examples, in line order."""
        tokens = self.counter.tokens
        for line, text in block:
            self.add_counted(line, *tokens(text))

    def add_counted(self, line: int, total: int, trained: int) -> int:
        """Add an example counted elsewhere (`service.files.counting`)."""
        self.totals[total] += 1
        self.trained[trained] += 1
        for limit in self.limits:
            limit.add(line, total)
        return total

    def stats(self) -> TokenStats:
        return TokenStats(
            encoding=self.encoding,
            models=self.models,
            total_tokens=sum(value * count for value, count in self.totals.items()),
            trained_tokens=sum(value * count for value, count in self.trained.items()),
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
