"""Request dependencies, in one place: the runtime, the database session (one transaction per
request), the caller and its scope checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from sqlalchemy.orm import Session

from service.auth.keys import Scope
from service.auth.service import Authenticator, Principal
from service.db import session_scope
from service.errors import AuthenticationFailed, PermissionDenied
from service.idempotency.service import HEADER, REPLAYED_HEADER, Idempotency, checked_key
from service.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    with session_scope(get_runtime(request).sessions) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session, scope="function")]


async def get_principal(request: Request) -> Principal:
    """The caller. Async so that a cached key costs no thread-pool hop (the proxy's hot path);
    a cache miss reads the database in the thread pool, once for all the requests with that key
    in flight."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.check(key.strip())
    request.state.principal = principal
    return principal


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """The caller, if its key holds one of `scopes`; else a 403."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not any(principal.has(scope) for scope in scopes):
            needed = "' or '".join(scopes)
            raise PermissionDenied(f"This API key lacks the '{needed}' scope this route needs.")
        return principal

    check.__name__ = "require_" + "_or_".join(scopes)
    return check


PlatformCaller = Annotated[Principal, Depends(require(Scope.PLATFORM))]
AdminCaller = Annotated[Principal, Depends(require(Scope.ADMIN))]
KeyAdminCaller = Annotated[Principal, Depends(require(Scope.ADMIN, Scope.PLATFORM))]
FilesCaller = Annotated[Principal, Depends(require(Scope.FILES))]
FineTuningCaller = Annotated[Principal, Depends(require(Scope.FINE_TUNING))]
WebhooksCaller = Annotated[Principal, Depends(require(Scope.WEBHOOKS))]
InferenceCaller = Annotated[Principal, Depends(require(Scope.INFERENCE))]
DeploymentsCaller = Annotated[Principal, Depends(require(Scope.DEPLOYMENTS))]


def get_idempotency(
    response: Response,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            max_length=255,
            description="Makes the create safe to retry: the same key and parameters within 24 hours "
            "return the object the first request made (with `Idempotent-Replayed: true`), creating "
            "nothing; the same key with other parameters is a 409 `idempotency_key_reused`.",
        ),
    ] = None,
) -> Idempotency:
    """The create's `Idempotency-Key` (optional), checked; a replayed answer says so in a header."""

    def mark_replayed() -> None:
        response.headers[REPLAYED_HEADER] = "true"

    return Idempotency(checked_key(key), mark_replayed)


IdempotentCreate = Annotated[Idempotency, Depends(get_idempotency)]
