"""Errors of the emulator, rendered in OpenAI's shape.

Every error is ``{"error": {"message", "type", "param", "code"}}`` with the status the ``openai``
SDK maps to its exception class.

    EmulatorError                 base: status 400, type invalid_request_error
    ├── InvalidRequest            400 a bad parameter (``param`` names it)
    ├── AuthenticationFailed      401 missing or wrong bearer key
    ├── NotFound                  404 an unknown object
    │   └── ModelNotFound         404 code model_not_found
    ├── RateLimited               429 code rate_limit_exceeded, with Retry-After
    └── ServerFault               5xx type server_error
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """Base of all emulator errors; carries the fields of OpenAI's error body."""

    status_code: int = 400
    error_type: str = "invalid_request_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(EmulatorError):
    """A parameter is missing or invalid; ``param`` names it."""


class AuthenticationFailed(EmulatorError):
    """The request has no bearer key or the wrong one."""

    status_code = 401
    default_code = "invalid_api_key"


class NotFound(EmulatorError):
    """The object does not exist (or was deleted)."""

    status_code = 404


class ModelNotFound(NotFound):
    """The model does not exist or is not served on this endpoint."""

    default_code = "model_not_found"

    @classmethod
    def for_model(cls, model: str) -> ModelNotFound:
        return cls(f"The model `{model}` does not exist or you do not have access to it.", param="model")


class RateLimited(EmulatorError):
    """Too many requests; the client should wait ``Retry-After`` seconds."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"


class ServerFault(EmulatorError):
    """The server failed (injected by the fault knobs)."""

    status_code = 500
    error_type = "server_error"
