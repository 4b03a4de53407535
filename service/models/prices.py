"""Training prices per base model, in US dollars per million training tokens.

OpenAI bills `price / 1M x tokens in the training file x epochs`; validation tokens are free.
These are defaults; `FTM_TRAINING_PRICES` (a JSON object, model -> dollars per 1M tokens)
overrides or adds entries. A model without a known price gets no cost estimate, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingPrice:
    usd_per_million: float
    source: str


GUIDE = "OpenAI fine-tuning guide, cost example (100k tokens x 3 epochs)"
TRAINING_PRICES: Mapping[str, TrainingPrice] = {
    # $0.90 for 100,000 tokens x 3 epochs, so $3.00 per million.
    "gpt-4o-mini-2024-07-18": TrainingPrice(3.00, GUIDE),
    # $2.40 for 100,000 tokens x 3 epochs, so $8.00 per million.
    "gpt-3.5-turbo-0125": TrainingPrice(8.00, GUIDE),
    "gpt-3.5-turbo-1106": TrainingPrice(8.00, "OpenAI pricing page: one price for gpt-3.5-turbo fine-tuning"),
    "gpt-4o-2024-08-06": TrainingPrice(
        25.00, "OpenAI pricing page, as summarised by tokonomics.ca (secondary)"
    ),
    "babbage-002": TrainingPrice(0.40, "OpenAI pricing page, legacy fine-tuning models"),
    "davinci-002": TrainingPrice(6.00, "OpenAI pricing page, legacy fine-tuning models"),
    # The gpt-4.1 family is left out on purpose: no primary source was read. Set FTM_TRAINING_PRICES.
}


def training_price(model: str, overrides: Mapping[str, float]) -> float | None:
    """Dollars per million training tokens for a base model, the setting first; None if unknown."""
    if model in overrides:
        return overrides[model]
    known = TRAINING_PRICES.get(model)
    return known.usd_per_million if known is not None else None
