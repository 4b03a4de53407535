"""What a job's training costs, from its training file's validation report.

Billed tokens per epoch are the training file's tokens in the model's encoding, each example
counted up to the model's training context (longer ones are truncated). When `n_epochs` is
`auto`, the epochs are OpenAI's default heuristic (its cookbook): 3, raised for small files so
they see about 100 examples, lowered for large ones to about 25,000, within 1 to 25. The cost is
`price per 1M tokens / 1M x billed tokens per epoch x epochs`; validation tokens are free.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.files.report import ValidationReport
from service.models.catalog import BASE_MODELS
from service.models.prices import training_price

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def default_epochs(examples: int) -> int:
    """The epochs OpenAI picks for `n_epochs: auto` on a file of `examples` examples."""
    if examples <= 0:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // examples)
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


def training_cost(billed_tokens_per_epoch: int, epochs: int, usd_per_million: float) -> float:
    return round(usd_per_million / 1_000_000 * billed_tokens_per_epoch * epochs, 6)


def billed_tokens(report: ValidationReport, model: str) -> int | None:
    """Tokens billed per epoch for the base model `model`; None when the report has no count."""
    base = BASE_MODELS[model]
    stats = report.tokens.get(base.encoding)
    if stats is None:
        return None
    for limit in stats.limits:
        if model in limit.models:
            return limit.billed_tokens
    return None


def epochs_for(report: ValidationReport, epochs_setting: object) -> int:
    return epochs_setting if isinstance(epochs_setting, int) else default_epochs(report.examples)


def job_cost(
    report: ValidationReport, model: str, epochs_setting: object, prices: Mapping[str, float]
) -> float | None:
    """The estimated cost in US dollars of training base model `model` on the file of `report`;
    None when no price or token count is known."""
    price = training_price(model, prices)
    billed = billed_tokens(report, model)
    if price is None or billed is None:
        return None
    return training_cost(billed, epochs_for(report, epochs_setting), price)
