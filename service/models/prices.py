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


@dataclass(frozen=True)
class InferencePrice:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_usd_per_million: float
    output_usd_per_million: float
    source: str


# Inference prices of fine-tuned models, by their base model: a fine-tuned model is billed at its
# base model's fine-tuned rate, which is higher than the base model's own.
FINE_TUNED_INFERENCE_PRICES: Mapping[str, InferencePrice] = {
    "gpt-4o-mini-2024-07-18": InferencePrice(
        0.30, 1.20, "OpenAI pricing page, as summarised by tokonomics.ca (secondary)"
    ),
    # Every other family is left out: no source was read. Set FTM_INFERENCE_PRICES.
}
# Inference prices of base models called as themselves. None is sourced yet, so a base model's
# calls carry no cost until FTM_INFERENCE_PRICES names them.
BASE_INFERENCE_PRICES: Mapping[str, InferencePrice] = {}


def inference_price(model: str, overrides: Mapping[str, tuple[float, float]]) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens for `model` as the proxy called it, None if unknown.

    A fine-tuned model (`ft:BASE:…`) is priced by `ft:BASE` in the setting, else the fine-tuned table;
    a base model by its name in the setting, else the base table. The setting's keys are therefore
    `gpt-4o-mini-2024-07-18` (the base model) and `ft:gpt-4o-mini-2024-07-18` (its fine-tunes).
    """
    if model.startswith("ft:"):
        key, table = "ft:" + model.split(":")[1], FINE_TUNED_INFERENCE_PRICES
    else:
        key, table = model, BASE_INFERENCE_PRICES
    if key in overrides:
        return overrides[key]
    known = table.get(key.removeprefix("ft:"))
    return (known.input_usd_per_million, known.output_usd_per_million) if known is not None else None
