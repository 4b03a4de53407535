"""The CLI's one error type and its exit codes; every failure a person can meet becomes one line
on stderr that names the service's message and the request id, never a traceback.

Exit codes (also in the README):

    0   done; a followed job succeeded; an uploaded file is valid
    1   the work ended badly: the job failed, the file is invalid
    2   bad command line or configuration (Click's usage errors use it too)
    3   the followed job was cancelled
    4   the service refused the request: bad input, not found, conflict (HTTP 4xx)
    5   the key was refused (HTTP 401) or lacks a scope (HTTP 403)
    6   the service could not be reached, timed out, or failed (HTTP 5xx)
    130 Ctrl-C: stopped following; the job runs on
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import IO, Any

import click
import httpx
import openai


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CANCELLED = 3
    REJECTED = 4
    AUTH = 5
    UNAVAILABLE = 6
    DETACHED = 130


class CliError(click.ClickException):
    """A failure shown as `ftm: error: <message> (HTTP <status>, request <id>)`."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int = ExitCode.FAILED,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # Click declares it on the class
        self.status = status
        self.request_id = request_id

    def format_message(self) -> str:
        details = [
            f"HTTP {self.status}" if self.status else "",
            f"request {self.request_id}" if self.request_id else "",
        ]
        shown = ", ".join(detail for detail in details if detail)
        line = " ".join(self.message.split())  # one line, whatever the service sent
        return f"ftm: error: {line}" + (f" ({shown})" if shown else "")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=file is None)


def exit_code_for_status(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.REJECTED


def _service_message(body: object, fallback: str) -> str:
    """The `message` of OpenAI's `{"error": {...}}` (or of the bare error object the SDK keeps)."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        return str(error["message"])
    return fallback


def unreachable(base_url: str, cause: BaseException) -> CliError:
    reason = str(cause) or type(cause).__name__
    return CliError(
        f"cannot reach the service at {base_url}: {reason}; is it running (`make run`) and is "
        "FTM_BASE_URL (or the profile's base URL) right?",
        exit_code=ExitCode.UNAVAILABLE,
    )


def from_sdk(error: openai.APIError, base_url: str) -> CliError:
    """An error the `openai` SDK raised, sorted by type, never by its text."""
    if isinstance(error, openai.APITimeoutError):
        return CliError(f"the service at {base_url} did not answer in time", exit_code=ExitCode.UNAVAILABLE)
    if isinstance(error, openai.APIConnectionError):
        return unreachable(base_url, error.__cause__ or error)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        return CliError(
            _service_message(error.body, f"the service answered HTTP {status}"),
            exit_code=exit_code_for_status(status),
            status=status,
            request_id=error.request_id,
        )
    return CliError(f"unexpected answer from the service: {error.message}", exit_code=ExitCode.UNAVAILABLE)


def from_response(response: httpx.Response) -> CliError:
    """A non-2xx answer of a native route, read with plain httpx."""
    try:
        body: object = response.json()
    except json.JSONDecodeError:
        body = None
    return CliError(
        _service_message(body, f"the service answered HTTP {response.status_code}"),
        exit_code=exit_code_for_status(response.status_code),
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )
