"""What a job needs of its files: a format that fits its base model and method.

Chat and preference data train chat models, prompt-completion data the completion models
(babbage-002, davinci-002); the `dpo` method trains on preference pairs only, `supervised` on
anything but. Reinforcement fine-tuning's data are not checked here.
"""

from __future__ import annotations

from service.models.catalog import BASE_MODELS, base_model_of

FITS: dict[tuple[str, str], frozenset[str]] = {
    ("chat", "supervised"): frozenset({"chat"}),
    ("chat", "dpo"): frozenset({"preference"}),
    ("completion", "supervised"): frozenset({"completion"}),
    ("completion", "dpo"): frozenset(),
}


def format_misfit(model: str, method: str, file_format: str | None) -> str | None:
    """Why a file of `file_format` cannot train `model` with `method`; None when it can."""
    base = BASE_MODELS.get(base_model_of(model))
    if base is None or file_format is None or method not in ("supervised", "dpo"):
        return None
    allowed = FITS[(base.kind, method)]
    if file_format in allowed:
        return None
    if not allowed:
        return f"{base.id} is a completion model and cannot be trained with the {method} method."
    wanted = " or ".join(sorted(allowed))
    return (
        f"the file holds {file_format} examples, but {method} training of {base.id} needs {wanted} examples."
    )
