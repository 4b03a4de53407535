"""Provider failures, sorted by what to do about them (never by matching error strings).

ProviderUnavailable   retry later: connection errors, timeouts, 408/409/429, 5xx.
                      `retry_after_s` carries the provider's Retry-After when it sent one.
ProviderRejected      do not retry: the provider refused the request (400/401/403/404/422);
                      carries the provider's status, message, code and param.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import openai

from service.errors import DependencyUnavailable, ProviderError

RETRYABLE_STATUSES = {408, 409, 429}

P = ParamSpec("P")
R = TypeVar("R")


class ProviderUnavailable(DependencyUnavailable):
    code = "provider_unavailable"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderRejected(ProviderError):
    code = "provider_rejected"


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate(error: openai.APIError) -> ProviderUnavailable | ProviderRejected:
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status in RETRYABLE_STATUSES or status >= 500:
            return ProviderUnavailable(
                f"The provider answered {status}: {error.message}", retry_after_s=_retry_after(error)
            )
        body = error.body if isinstance(error.body, dict) else {}
        return ProviderRejected(
            str(body.get("message") or error.message),
            status_code=status,
            code=str(body.get("code") or "provider_rejected"),
            param=body.get("param") if isinstance(body.get("param"), str) else None,
        )
    return ProviderUnavailable(f"The provider could not be reached: {type(error).__name__}")


def calling_provider(function: Callable[P, R]) -> Callable[P, R]:
    """Run an SDK call and turn its failures into ProviderUnavailable / ProviderRejected."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except openai.APIError as error:
            raise translate(error) from error

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper
