"""The emulator's errors. ``emulator.error_handlers`` renders each in OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` with the status the ``openai`` SDK maps to its
exception class, so a client cannot tell the emulator from a real provider by its errors.

    EmulatorError                 500 server_error; the base: message, param, code, headers
    ├── InvalidRequest            400 invalid_request_error; ``param`` names the bad parameter
    │   └── PermissionDenied      403 the action is never allowed (deleting a base model)
    ├── AuthenticationFailed      401 code invalid_api_key: missing or wrong bearer key
    ├── NotFound                  404 code not_found: an unknown object or URL
    │   └── ModelNotFound         404 code model_not_found
    ├── RateLimited               429 type requests, code rate_limit_exceeded, with Retry-After
    └── ServerFault               5xx server_error, injected by the fault knobs
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """An answer in OpenAI's error shape; subclasses fix the status, type and code."""

    status_code = 500
    type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(EmulatorError):
    """A parameter is wrong; ``param`` names it."""

    status_code = 400
    type = "invalid_request_error"


class PermissionDenied(InvalidRequest):
    """The request is well formed but the action is never allowed."""

    status_code = 403


class AuthenticationFailed(EmulatorError):
    """No bearer key, or not the emulator's key."""

    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(EmulatorError):
    """No such object (or no such URL)."""

    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    """The model does not exist or is not served on this endpoint."""

    code = "model_not_found"

    @classmethod
    def for_model(cls, model: str) -> ModelNotFound:
        return cls(f"The model `{model}` does not exist or you do not have access to it.", param="model")


class RateLimited(EmulatorError):
    """Too many requests; the client should wait ``Retry-After`` seconds (OpenAI's 429 type)."""

    status_code = 429
    type = "requests"
    code = "rate_limit_exceeded"


class ServerFault(EmulatorError):
    """The server failed (injected by the fault knobs)."""

    status_code = 500
    type = "server_error"
