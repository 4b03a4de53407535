"""What the OpenAPI document says about errors and authentication, derived from each route.

Every route is a `service.routing.ServiceRoute`, which documents the errors that what it depends on
makes possible, all in OpenAI's shape (`ErrorResponse`):

- authenticated (it depends on `get_principal`): 401, and the bearer security requirement;
- scope-checked (a dependency that takes the principal, such as `require(Scope.FILES)`): 403;
- a query, header or body parameter, or a path parameter of another type than a string: 400
  naming it;
- a path parameter: 404 (missing, or another tenant's: never a 403);
- a request body (JSON, a form, or one declared in `openapi_extra`): 400 for a malformed body and
  413 for one over the size limit;
- an idempotent create (it depends on `get_idempotency`): 409 for a key reused or in use, 404 for
  a replay whose object was deleted since.

A route adds with `responses=errors(...)` what only its own logic answers (a state that forbids the
action, a provider that cannot be reached, the proxy's relayed statuses). FastAPI's 422 is left
out of the document: a parameter that fails validation is a 400 here, as at OpenAI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from service.deps import get_idempotency, get_principal

SECURITY_SCHEME = "bearerAuth"

DESCRIPTIONS = {
    400: "Invalid request: a parameter is wrong and `param` names it (null when the body itself is "
    "malformed).",
    401: "No API key, or an unknown, revoked or expired one.",
    403: "The API key lacks the scope this route needs, or the action is not allowed on this object.",
    404: "Not found: it does not exist, or it belongs to another tenant.",
    409: "The object is in a state that forbids the action.",
    413: "The request body is larger than this route accepts.",
    429: "Too many requests: wait as long as `Retry-After` says.",
    502: "The provider could not be reached, or refused the service's own credentials.",
    503: "A dependency (the provider, the database or Redis) is unavailable; try again later.",
    504: "The provider did not answer in time.",
}


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, for people.")
    type: str = Field(description="OpenAI's error type, e.g. `invalid_request_error`.")
    param: str | None = Field(description="The parameter at fault, e.g. `hyperparameters.n_epochs`.")
    code: str | None = Field(description="A stable code, e.g. `invalid_value` or `model_not_found`.")


class ErrorResponse(BaseModel):
    """An error, in OpenAI's shape: the `openai` SDK raises the exception class of its status."""

    error: ErrorDetail


def errors(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these statuses in OpenAI's error shape; `descriptions` overrides by `s<code>`."""
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(f"s{status}", DESCRIPTIONS[status])}
        for status in statuses
    }


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def inferred_statuses(route: APIRoute) -> set[int]:
    """The error statuses that `route` can answer with because of what it depends on."""
    statuses: set[int] = set()
    dependencies = list(_dependencies(route.dependant))
    if any(dependency.call is get_principal for dependency in dependencies):
        statuses.add(401)
    if any(
        any(sub.call is get_principal for sub in dependency.dependencies)
        for dependency in dependencies
        if dependency.call is not get_principal
    ):
        statuses.add(403)
    every = [route.dependant, *dependencies]
    path_params = [param for dependant in every for param in dependant.path_params]
    if path_params:
        statuses.add(404)
    typed_path = any(param.field_info.annotation is not str for param in path_params)
    if typed_path or any(d.query_params or d.header_params or d.cookie_params for d in every):
        statuses.add(400)
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        statuses |= {400, 413}
    if _is_idempotent(dependencies):
        statuses |= {400, 404, 409}
    return statuses


IDEMPOTENCY_409 = (
    "`idempotency_key_reused`: the `Idempotency-Key` was used for another request in the last 24 "
    "hours; `idempotency_key_in_use`: a request with it is in progress, retry."
)


def inferred_descriptions(route: APIRoute) -> dict[str, str]:
    """What the errors that `route`'s dependencies make possible mean there, by `s<code>`."""
    if not _is_idempotent(list(_dependencies(route.dependant))):
        return {}
    return {
        "s404": DESCRIPTIONS[404] + " Or `idempotency_object_deleted`: the object this "
        "`Idempotency-Key` created has been deleted since.",
        "s409": IDEMPOTENCY_409,
    }


def _is_idempotent(dependencies: list[Dependant]) -> bool:
    return any(dependency.call is get_idempotency for dependency in dependencies)


class ServiceApp(FastAPI):
    """The API application; its OpenAPI document declares the bearer key and drops FastAPI's 422s."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        document = super().openapi()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        document.setdefault("components", {})["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An ftm API key: `Authorization: Bearer <key>`.",
            }
        }
        return document


def is_form(route: APIRoute) -> bool:
    return route.body_field is not None and isinstance(route.body_field.field_info, Form)
