"""Errors of the emulator: the service's own error hierarchy (`service.errors`), which renders
OpenAI's shape `{"error": {"message", "type", "param", "code"}}` with the status the `openai` SDK
maps to its exception class, plus the few kinds only a provider answers with.

    ServiceError (EmulatorError)
    ├── InvalidRequest            400 a bad parameter (``param`` names it)
    ├── AuthenticationFailed      401 missing or wrong bearer key
    ├── NotFound                  404 an unknown object
    │   └── ModelNotFound         404 code model_not_found
    ├── RateLimited               429 code rate_limit_exceeded, with Retry-After
    └── ServerFault               5xx type server_error
"""

from __future__ import annotations

from service.errors import AuthenticationFailed, InvalidRequest, NotFound, ServiceError

EmulatorError = ServiceError

__all__ = [
    "AuthenticationFailed",
    "EmulatorError",
    "InvalidRequest",
    "ModelNotFound",
    "NotFound",
    "RateLimited",
    "ServerFault",
]


class ModelNotFound(NotFound):
    """The model does not exist or is not served on this endpoint."""

    code = "model_not_found"

    @classmethod
    def for_model(cls, model: str) -> ModelNotFound:
        return cls(f"The model `{model}` does not exist or you do not have access to it.", param="model")


class RateLimited(ServiceError):
    """Too many requests; the client should wait ``Retry-After`` seconds (OpenAI's 429 type)."""

    status_code = 429
    type = "requests"
    code = "rate_limit_exceeded"


class ServerFault(ServiceError):
    """The server failed (injected by the fault knobs)."""

    status_code = 500
    type = "server_error"
