"""The service's errors, rendered in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

Hierarchy:

    ServiceError                      base; carries status_code, type, code, param
    ├── InvalidRequest (400)          a parameter is wrong; `param` names it
    ├── AuthenticationFailed (401)    no key, unknown key, revoked or expired key
    ├── PermissionDenied (403)        the key lacks the scope the route needs
    ├── NotFound (404)                missing, or belongs to another tenant (never a 403)
    ├── Conflict (409)                the object is in a state that forbids the action
    ├── PayloadTooLarge (413)
    ├── RateLimited (429)
    │   └── RateLimitExceeded         a key's or tenant's own limit (type `requests` or `tokens`)
    ├── ProviderError (status kept)   the provider answered with an error; its status is kept
    └── DependencyUnavailable (503)   database, Redis or a provider cannot be reached

The error types are OpenAI's, so the `openai` SDK raises the matching exception class.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
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


class InvalidRequest(ServiceError):
    status_code = 400
    type = "invalid_request_error"


class AuthenticationFailed(ServiceError):
    status_code = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(ServiceError):
    status_code = 403
    type = "permission_error"
    code = "insufficient_scope"


class NotFound(ServiceError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    type = "invalid_request_error"
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class RateLimited(ServiceError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class RateLimitExceeded(RateLimited):
    """Over a per-minute limit of the key or its tenant; `type` is OpenAI's `requests` or `tokens`."""

    def __init__(self, message: str, *, kind: str, headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.type = kind


class ProviderError(ServiceError):
    """The provider answered with an error status; the proxy passes that status on."""

    type = "api_error"
    code = "provider_error"

    def __init__(self, message: str, *, status_code: int, **kwargs: Any) -> None:
        super().__init__(message, status_code=status_code, **kwargs)


class DependencyUnavailable(ServiceError):
    status_code = 503
    type = "server_error"
    code = "dependency_unavailable"
