"""Comparing two completed runs of one eval, item by item (a native extra).

Items are paired by their content (the same item in both runs, wherever it stands in each data
source); an item that errored in either run, or that a criterion could not grade, is left out of
that criterion. Per criterion:

- win / tie / loss: the candidate's score above, equal to, or below the baseline's;
- the mean score difference (candidate − baseline) with a 95% percentile bootstrap confidence
  interval over the paired differences (NumPy's seeded generator, so a seed gives one answer);
- an exact two-sided sign test on wins against losses (ties dropped), `scipy.stats.binomtest`;
- a verdict: `better` or `worse` when the sign test's p-value is below `alpha`, else `no_difference`.

The overall verdict is `candidate_better` when some criterion is better and none worse,
`candidate_worse` in the opposite case, `mixed` when both happen, else `no_significant_difference`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import binomtest
from sqlalchemy.orm import Session

from service.errors import Conflict, InvalidRequest
from service.evals.models import EvalRow, EvalRunItemRow, EvalRunRow, ItemStatus, RunStatus
from service.evals.service import items_of

CONFIDENCE = 0.95
BLOCK_ELEMENTS = 1_000_000  # bootstrap indices drawn at a time


class CriterionComparison(BaseModel):
    testing_criteria: str
    paired_items: int = Field(description="Items both runs graded by this criterion.")
    wins: int
    ties: int
    losses: int
    candidate_mean: float | None
    baseline_mean: float | None
    mean_difference: float | None = Field(description="Candidate minus baseline, over the paired items.")
    ci_low: float | None = Field(description="The 95% bootstrap confidence interval's lower end.")
    ci_high: float | None
    candidate_pass_rate: float | None
    baseline_pass_rate: float | None
    p_value: float = Field(description="Exact two-sided sign test of wins against losses.")
    verdict: Literal["better", "worse", "no_difference"]


class Comparison(BaseModel):
    object: Literal["eval.comparison"] = "eval.comparison"
    eval_id: str
    candidate_run_id: str
    baseline_run_id: str
    candidate_model: str
    baseline_model: str
    shared_items: int = Field(description="Items found in both runs.")
    alpha: float
    seed: int
    resamples: int
    criteria: list[CriterionComparison]
    verdict: Literal["candidate_better", "candidate_worse", "mixed", "no_significant_difference"]
    evidence: list[str] = Field(description="Why: one line per criterion.")


def _keyed(items: list[EvalRunItemRow]) -> dict[tuple[str, int], EvalRunItemRow]:
    seen: Counter[str] = Counter()
    keyed = {}
    for item in sorted(items, key=lambda row: row.datasource_item_id):
        key = json.dumps(item.item, sort_keys=True, separators=(",", ":"))
        keyed[(key, seen[key])] = item
        seen[key] += 1
    return keyed


def _scores(item: EvalRunItemRow) -> dict[str, tuple[float, bool]]:
    if item.status != ItemStatus.DONE or item.error is not None:
        return {}
    return {result["name"]: (float(result["score"]), bool(result["passed"])) for result in item.results}


def compare_runs(
    session: Session,
    eval_row: EvalRow,
    candidate: EvalRunRow,
    baseline: EvalRunRow,
    *,
    seed: int,
    resamples: int,
    alpha: float,
) -> Comparison:
    if candidate.id == baseline.id:
        raise InvalidRequest("Compare two different runs.", param="other_run_id")
    for run, param in ((candidate, "run_id"), (baseline, "other_run_id")):
        if run.status != RunStatus.COMPLETED:
            raise Conflict(
                f"The run '{run.id}' is {run.status}, not completed.", param=param, code="run_not_completed"
            )
    ours, theirs = _keyed(items_of(session, candidate.id)), _keyed(items_of(session, baseline.id))
    shared = [key for key in ours if key in theirs]
    rng = np.random.default_rng(seed)
    criteria = [
        _criterion(criterion["name"], [(ours[k], theirs[k]) for k in shared], rng, resamples, alpha)
        for criterion in eval_row.testing_criteria
    ]
    better = [c for c in criteria if c.verdict == "better"]
    worse = [c for c in criteria if c.verdict == "worse"]
    verdict: Any
    if better and worse:
        verdict = "mixed"
    elif better:
        verdict = "candidate_better"
    elif worse:
        verdict = "candidate_worse"
    else:
        verdict = "no_significant_difference"
    return Comparison(
        eval_id=eval_row.id,
        candidate_run_id=candidate.id,
        baseline_run_id=baseline.id,
        candidate_model=candidate.model or "",
        baseline_model=baseline.model or "",
        shared_items=len(shared),
        alpha=alpha,
        seed=seed,
        resamples=resamples,
        criteria=criteria,
        verdict=verdict,
        evidence=[_evidence(c, alpha) for c in criteria],
    )


def _criterion(
    name: str,
    pairs: list[tuple[EvalRunItemRow, EvalRunItemRow]],
    rng: np.random.Generator,
    resamples: int,
    alpha: float,
) -> CriterionComparison:
    candidate, baseline, candidate_passed, baseline_passed = [], [], [], []
    for ours, theirs in pairs:
        a, b = _scores(ours).get(name), _scores(theirs).get(name)
        if a is not None and b is not None:
            candidate.append(a[0])
            baseline.append(b[0])
            candidate_passed.append(a[1])
            baseline_passed.append(b[1])
    differences = np.array(candidate, dtype=float) - np.array(baseline, dtype=float)
    wins, losses = int((differences > 0).sum()), int((differences < 0).sum())
    ties = len(differences) - wins - losses
    p_value = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    low = high = mean = None
    if len(differences):
        mean = float(differences.mean())
        means = _bootstrap_means(differences, rng, resamples)
        tail = (1 - CONFIDENCE) / 2 * 100
        low, high = (float(v) for v in np.percentile(means, [tail, 100 - tail]))
    verdict: Literal["better", "worse", "no_difference"] = "no_difference"
    if p_value < alpha:
        verdict = "better" if wins > losses else "worse"
    count = len(candidate)
    return CriterionComparison(
        testing_criteria=name,
        paired_items=count,
        wins=wins,
        ties=ties,
        losses=losses,
        candidate_mean=float(np.mean(candidate)) if count else None,
        baseline_mean=float(np.mean(baseline)) if count else None,
        mean_difference=mean,
        ci_low=low,
        ci_high=high,
        candidate_pass_rate=sum(candidate_passed) / count if count else None,
        baseline_pass_rate=sum(baseline_passed) / count if count else None,
        p_value=p_value,
        verdict=verdict,
    )


def _bootstrap_means(differences: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The means of `resamples` resamples of `differences`, drawn a block of rows at a time so
    memory stays near `BLOCK_ELEMENTS` whatever the run's size (10,000 resamples of 10,000 items
    at once would be 800 MB of indices). Drawing rows in blocks consumes the generator exactly as
    one draw of them all does, so a seed gives the same interval either way."""
    count = len(differences)
    rows = max(1, BLOCK_ELEMENTS // count)
    means = []
    for start in range(0, resamples, rows):
        draws = rng.integers(0, count, size=(min(rows, resamples - start), count))
        means.append(differences[draws].mean(axis=1))
    return np.concatenate(means)


def _evidence(c: CriterionComparison, alpha: float) -> str:
    if not c.paired_items:
        return f"{c.testing_criteria}: no item was graded in both runs."
    relation = {"better": "better", "worse": "worse", "no_difference": "not significantly different"}[
        c.verdict
    ]
    return (
        f"{c.testing_criteria}: {relation} — {c.wins} wins, {c.ties} ties, {c.losses} losses over "
        f"{c.paired_items} items; mean difference {c.mean_difference:+.3f} "
        f"(95% CI {c.ci_low:+.3f} to {c.ci_high:+.3f}); sign test p = {c.p_value:.3g} (alpha {alpha:g})."
    )
