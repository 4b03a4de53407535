"""Who may read the operations endpoints that are not health checks.

`/metrics` is open in dev, guarded by `FTM_METRICS_TOKEN` whenever one is set (a bearer token,
compared in constant time), and off in prod without one: then it answers exactly like a path that
does not exist, so a scanner learns nothing.
"""

from __future__ import annotations

import hmac

from service.config import Settings
from service.errors import AuthenticationFailed, NotFound


def check_metrics_access(settings: Settings, authorization: str | None) -> None:
    token = settings.metrics_token
    if token is None:
        if settings.env == "prod":
            raise NotFound("Not Found")
        return
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise AuthenticationFailed(
            "Metrics need 'Authorization: Bearer <FTM_METRICS_TOKEN>'.",
            code="invalid_metrics_token",
            headers={"WWW-Authenticate": "Bearer"},
        )
