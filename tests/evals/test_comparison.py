"""The comparison's bootstrap: drawn in blocks (bounded memory) it gives, for a seed, exactly the
resample means one draw of every resample gives."""

from __future__ import annotations

import numpy as np
import pytest

from service.evals import comparison


@pytest.mark.parametrize(("items", "resamples"), [(1, 100), (7, 1_000), (500, 10_000)])
def test_the_blocked_bootstrap_equals_one_draw_of_every_resample(
    monkeypatch: pytest.MonkeyPatch, items: int, resamples: int
) -> None:
    differences = np.random.default_rng(3).normal(size=items)
    whole = differences[np.random.default_rng(11).integers(0, items, size=(resamples, items))].mean(axis=1)
    monkeypatch.setattr(comparison, "BLOCK_ELEMENTS", 1_000)

    blocked = comparison._bootstrap_means(differences, np.random.default_rng(11), resamples)

    assert np.array_equal(blocked, whole)
